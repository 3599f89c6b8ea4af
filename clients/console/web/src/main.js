// The console shell: sign-in, the page list (hash routes), and whose data the pages show.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { signIn, signOut, token, tool } from "./api.js";
import { html, useAction, Notice, Field } from "./ui.js";
import { Memories } from "./pages/memories.js";
import { People } from "./pages/people.js";
import { Knowledge } from "./pages/knowledge.js";
import { Activity } from "./pages/activity.js";
import { Status } from "./pages/status.js";
import { Avatar } from "./pages/avatar.js";

const PAGES = [
  ["memories", "Memories", Memories],
  ["people", "People", People],
  ["knowledge", "Knowledge", Knowledge],
  ["activity", "Activity", Activity],
  ["status", "Status", Status],
  ["avatar", "Avatar", Avatar],
];

const route = () => (location.hash.replace(/^#\/?/, "") || "memories");

function SignIn({ onIn }) {
  const [value, setValue] = useState("");
  const [state, run] = useAction();
  const submit = (e) => {
    e.preventDefault();
    run(async () => {
      const s = await signIn(value.trim());
      if (!s) throw new Error("This token is not accepted. Use ALPHAAVATAR_TOKEN (owner) or one of ALPHAAVATAR_USER_TOKENS.");
      onIn(s);
    });
  };
  return html`<main class="signin" id="main">
    <h1>AlphaAvatar console</h1>
    <p>Sign in with your token: the owner's token sees every user, a user's token only that user.</p>
    <form onSubmit=${submit} aria-label="Sign in">
      <${Field} label="Token"><input id="token" type="password" autocomplete="current-password" required
        value=${value} onInput=${(e) => setValue(e.target.value)} /></${Field}>
      <button type="submit" id="signin" disabled=${state.busy}>Sign in</button>
    </form>
    <${Notice} state=${state} />
  </main>`;
}

// Whose data the pages show: a user token is pinned to its user; the owner picks one (here or on People).
function Subject({ session, subject, setSubject }) {
  const [users, setUsers] = useState([]);
  // What is being typed is the field's own until committed: a redraw (the user list arriving) keeps it.
  const [draft, setDraft] = useState(subject);
  useEffect(() => setDraft(subject), [subject]);
  useEffect(() => {
    if (session.owner) tool("persona", "user_list", { limit: 100 }).then((r) => setUsers(r.users)).catch(() => {});
  }, [session, subject]);
  if (!session.owner) return html`<p class="subject">Signed in as user <strong id="whoami">${session.user_id}</strong></p>`;
  const named = users.find((u) => u.user_id === subject);
  return html`<div class="subject">
    <label for="subject">Owner — showing user</label>
    <input id="subject" list="subject-users" value=${draft} size="14" onInput=${(e) => setDraft(e.target.value)}
      onChange=${(e) => setSubject(e.target.value.trim() || "default")} />
    ${named ? html`<span id="subject-name">${named.name}</span>` : null}
    <datalist id="subject-users">
      <option value="default">memories tied to no person</option>
      ${users.map((u) => html`<option value=${u.user_id}>${u.name}</option>`)}
    </datalist>
  </div>`;
}

// Moves focus to the page's content without touching the hash (the hash is the page's route).
const skip = (e) => { e.preventDefault(); document.getElementById("main")?.focus(); };

function App() {
  const [session, setSession] = useState(undefined);
  const [page, setPage] = useState(route());
  const [subject, setSubjectState] = useState(sessionStorage.getItem("alphaavatar.subject") || "default");
  const setSubject = (u) => { sessionStorage.setItem("alphaavatar.subject", u); setSubjectState(u); };
  useEffect(() => { document.getElementById("main")?.focus({ preventScroll: true }); }, [page]);  // a new page is read from its title
  useEffect(() => {
    const on = () => setPage(route());
    addEventListener("hashchange", on);
    signIn(token()).then((s) => setSession(s || null), () => setSession(null));
    return () => removeEventListener("hashchange", on);
  }, []);
  if (session === undefined) return html`<p class="loading" role="status">Loading…</p>`;
  if (session === null) return html`<${SignIn} onIn=${setSession} />`;
  const user = session.owner ? subject : session.user_id;
  const [, title, Page] = PAGES.find(([id]) => id === page) || PAGES[0];
  return html`<div class="shell">
    <a class="skip" id="skip" href=${`#/${page}`} onClick=${skip}>Skip to content</a>
    <header>
      <span class="brand">AlphaAvatar</span>
      <nav aria-label="Pages"><ul>
        ${PAGES.map(([id, label]) => html`<li><a href=${`#/${id}`} id=${`nav-${id}`}
          aria-current=${id === page ? "page" : undefined}>${label}</a></li>`)}
      </ul></nav>
      <${Subject} session=${session} subject=${subject} setSubject=${setSubject} />
      <button class="link" id="signout" onClick=${() => { signOut(); setSession(null); }}>Sign out</button>
    </header>
    <main id="main" tabindex="-1" data-page=${page}>
      <h1>${title}</h1>
      <${Page} session=${session} user=${user} setSubject=${session.owner ? setSubject : null} />
    </main>
  </div>`;
}

render(html`<${App} />`, document.getElementById("app"));
