// Memories: list or search (scope, session, time), add, edit, delete, history, export, forget me.
import { useEffect, useState } from "preact/hooks";
import { download, tool } from "../api.js";
import { html, useAction, useLatest, Notice, Field, when } from "../ui.js";
import { ForgetMe } from "./forget.js";

const SCOPES = ["user", "session", "tool", "avatar"];
const PAGE = 50;
const iso = (local) => (local ? new Date(local).toISOString() : undefined);

function Memory({ m, user, onChanged }) {
  const [editing, setEditing] = useState(false);
  const [text, setText] = useState(m.content);
  const [history, setHistory] = useState(null);
  const [state, run] = useAction();
  const save = (e) => {
    e.preventDefault();
    run(async () => { await tool("memory", "memory_update", { memory_id: m.id, content: text }); setEditing(false); onChanged(); });
  };
  const remove = () => {
    if (!confirm(`Delete this memory?\n\n“${m.content.slice(0, 200)}”`)) return;
    run(async () => { await tool("memory", "memory_delete", { memory_id: m.id }); onChanged(); });
  };
  const showHistory = () => run(async () => setHistory(history ? null : (await tool("memory", "memory_history", { memory_id: m.id })).events));
  return html`<li class="card memory" data-id=${m.id}>
    ${editing
      ? html`<form onSubmit=${save} class="edit"><${Field} label="Memory text">
          <textarea rows="3" value=${text} onInput=${(e) => setText(e.target.value)} required /></${Field}>
          <button type="submit">Save</button> <button type="button" onClick=${() => setEditing(false)}>Cancel</button></form>`
      : html`<p class="content">${m.content}</p>`}
    <p class="meta">
      <span class="tag">${m.scope}</span>
      ${m.source === "reflection" ? html`<span class="tag derived">derived from ${m.derived_from.length} memories</span>` : null}
      ${m.session_id ? html`<span>session ${m.session_id}</span>` : null}
      <span>occurred ${when(m.occurred_at)}</span> <span>updated ${when(m.updated_at)}</span>
      ${m.score != null ? html`<span>score ${m.score.toFixed(3)}</span>` : null}
      ${m.relevant === false ? html`<span class="tag">weak match</span>` : null}
    </p>
    <div class="actions">
      <button onClick=${() => setEditing(true)} aria-label=${`Edit memory ${m.id}`}>Edit</button>
      <button onClick=${showHistory} aria-expanded=${history ? "true" : "false"}>History</button>
      <button class="danger" onClick=${remove} aria-label=${`Delete memory ${m.id}`}>Delete</button>
    </div>
    ${history ? html`<ol class="history">${history.map((e) => html`<li><strong>${e.event}</strong> ${when(e.at)}
      ${e.old ? html` — was “${e.old}”` : null}${e.new ? html` → “${e.new}”` : null}</li>`)}</ol>` : null}
    <${Notice} state=${state} />
  </li>`;
}

export function Memories({ session, user }) {
  const [form, setForm] = useState({ query: "", scope: "", session_id: "", since: "", until: "" });
  const [items, setItems] = useState([]);
  const [next, setNext] = useState(null);
  const [total, setTotal] = useState(null);
  const [searched, setSearched] = useState(null);  // the query the list answers (null: a listing)
  const [nearest, setNearest] = useState(false);  // show results that match nothing well
  const [state, run] = useAction();
  const [added, setAdded] = useState({ content: "", scope: "user" });
  const set = (k) => (e) => setForm({ ...form, [k]: e.target.value });
  const args = () => ({ user_id: user, scope: form.scope, session_id: form.session_id, since: iso(form.since), until: iso(form.until) });

  const latest = useLatest();
  const load = (cursor) => run(async () => {
    const current = latest();
    const r = form.query.trim()
      ? await tool("memory", "memory_search", { ...args(), query: form.query, limit: PAGE, cursor })
      : await tool("memory", "memory_list", { ...args(), limit: PAGE, cursor });
    if (!current()) return;
    setItems(cursor ? [...items, ...r.results] : r.results);
    setNext(r.next_cursor);
    setTotal(r.total ?? null);
    setSearched(form.query.trim() || null);
    if (!cursor) setNearest(false);
  });
  useEffect(() => { load(null); }, [user]);

  const submit = (e) => { e.preventDefault(); load(null); };
  const add = (e) => {
    e.preventDefault();
    run(async () => {
      const r = await tool("memory", "memory_add", { content: added.content, scope: added.scope, user_id: user, infer: false });
      setAdded({ ...added, content: "" });
      await load(null);
      return r;
    }, (r) => r && `Stored: ${r.results.map((x) => x.event).join(", ")}`);
  };
  // A search shows what matches (a word in common, or closer in meaning than unrelated memories come);
  // the nearest of the rest only on request, so an unrelated query is answered "nothing matches".
  const weak = searched ? items.filter((m) => m.relevant === false) : [];
  const shown = nearest ? items : items.filter((m) => !weak.includes(m));
  const heading = total != null ? `${total.toLocaleString()} memories`
    : shown.length ? `${shown.length} ${shown.length === 1 ? "result" : "results"}` : `No memory matches “${searched}” well`;
  const exportAs = (format) => run(() => download(format, user), (n) => `Downloaded ${n.toLocaleString()} bytes.`);

  return html`<section aria-labelledby="find-h">
    <h2 id="find-h">Find</h2>
    <form class="filters" onSubmit=${submit} role="search">
      <${Field} label="Search (hybrid: meaning and words)"><input id="q" type="search" value=${form.query} onInput=${set("query")} /></${Field}>
      <${Field} label="Scope"><select id="scope" value=${form.scope} onChange=${set("scope")}>
        <option value="">user, session and avatar</option>${SCOPES.map((s) => html`<option value=${s}>${s}</option>`)}</select></${Field}>
      <${Field} label="Session id"><input id="session" value=${form.session_id} onInput=${set("session_id")} /></${Field}>
      <${Field} label="Since" hint="when it occurred"><input id="since" type="datetime-local" value=${form.since} onInput=${set("since")} /></${Field}>
      <${Field} label="Until"><input id="until" type="datetime-local" value=${form.until} onInput=${set("until")} /></${Field}>
      <button type="submit" id="search">${form.query.trim() ? "Search" : "List"}</button>
    </form>
  </section>
  <section aria-labelledby="add-h">
    <h2 id="add-h">Remember something</h2>
    <form class="add" onSubmit=${add}>
      <${Field} label="New memory"><textarea id="new-memory" rows="2" required value=${added.content}
        onInput=${(e) => setAdded({ ...added, content: e.target.value })} /></${Field}>
      <${Field} label="Scope of the new memory"><select id="new-scope" value=${added.scope} onChange=${(e) => setAdded({ ...added, scope: e.target.value })}>
        ${SCOPES.map((s) => html`<option value=${s}>${s}</option>`)}</select></${Field}>
      <button type="submit" id="add">Add</button>
    </form>
  </section>
  <${Notice} state=${state} />
  <section aria-labelledby="list-h">
    <h2 id="list-h">${heading}</h2>
    ${session.owner && user === "default" && total === 0 ? html`<p class="empty" id="pick-hint">User “default” holds the
      memories tied to no person, and has none. Pick a person under “Owner — showing user” above, or on the
      <a href="#/people">People</a> page.</p>` : null}
    ${total === 0 && !(session.owner && user === "default") ? html`<p class="empty">No memories yet: add one above, or talk to the avatar.</p>` : null}
    <ul class="cards" id="memories">${shown.map((m) => html`<${Memory} key=${m.id} m=${m} user=${user} onChanged=${() => load(null)} />`)}</ul>
    ${weak.length && !nearest ? html`<p id="weak">${weak.length} ${weak.length === 1 ? "memory comes" : "memories come"} nearest but
      ${weak.length === 1 ? "shares" : "share"} no word with the search and ${weak.length === 1 ? "is" : "are"} no closer in meaning than unrelated ones.
      <button class="link" id="show-nearest" onClick=${() => setNearest(true)}>Show ${weak.length === 1 ? "it" : "them"} anyway</button></p>` : null}
    ${next ? html`<button id="more" onClick=${() => load(next)}>More</button>` : null}
  </section>
  <section aria-labelledby="export-h">
    <h2 id="export-h">Export and erase</h2>
    <button id="export-json" onClick=${() => exportAs("json")}>Download JSON</button>
    <button id="export-md" onClick=${() => exportAs("markdown")}>Download Markdown</button>
    <${ForgetMe} session=${session} user=${user} onDone=${() => load(null)} />
  </section>`;
}
