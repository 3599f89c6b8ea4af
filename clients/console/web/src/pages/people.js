// People: users (voiceprint/face counts, provisional), profile with provenance and history,
// rename / merge / forget, enroll a voice from the microphone and a face from the camera or a file.
import { useEffect, useState } from "preact/hooks";
import { tool, toBase64 } from "../api.js";
import { recordWav, snapshot } from "../media.js";
import { html, useAction, useLatest, Notice, Field, when } from "../ui.js";

const samples = (u) => Object.values(u.voice_samples || {}).reduce((a, b) => a + b, 0);

// Flattens a Profile into rows: field, value, fact.
function facts(p) {
  const rows = [];
  const put = (field, f) => (Array.isArray(f) ? f.forEach((x) => put(field, x)) : f && f.value !== undefined && rows.push([field, f]));
  for (const [k, v] of Object.entries(p.identity || {})) put(`identity.${k}`, v);
  for (const k of ["preferences", "relationships", "goals", "routines", "important_dates", "communication_style", "accessibility_notes"]) put(k, p[k]);
  for (const [k, v] of Object.entries(p.custom || {})) put(`custom.${k}`, v);
  return rows;
}
const show = (v) => (typeof v === "object" ? Object.values(v).join(" — ") : String(v));

// The profile's fields (persona's profile.py): one value, many values, or a record of two parts.
const ONE = ["identity.name", "identity.preferred_name", "identity.pronouns", "identity.location", "identity.time_zone",
  "identity.occupation", "communication_style"];
const MANY = ["preferences", "identity.languages", "goals", "routines", "accessibility_notes"];
const RECORDS = { relationships: ["name", "relation"], important_dates: ["label", "date"] };
const HINTS = { "identity.time_zone": "an IANA name such as Europe/Paris", important_dates: "date: YYYY-MM-DD or MM-DD" };

// The profile form: a list of the valid fields (custom.<key> for anything else), its error beside it.
function ProfileForm({ id, act }) {
  const [field, setField] = useState("preferences");
  const [custom, setCustom] = useState("");
  const [value, setValue] = useState({});
  const [state, run] = useAction();
  const parts = RECORDS[field];
  const name = field === "custom" ? `custom.${custom.trim()}` : field;
  const submit = (e) => {
    e.preventDefault();
    const v = parts ? Object.fromEntries(parts.map((k) => [k, value[k] || ""])) : value.value;
    run(() => act(() => tool("persona", "profile_update", { user_id: id,
      patches: [{ op: MANY.includes(field) || parts ? "add" : "set", field: name, value: v }] })), () => "Profile updated.")
      .then((r) => r && setValue({}));
  };
  const input = (k, label) => html`<${Field} label=${label} hint=${HINTS[field]}><input id=${`patch-${k}`} required
    value=${value[k] || ""} onInput=${(e) => setValue({ ...value, [k]: e.target.value })} /></${Field}>`;
  return html`<form class="inline" id="profile-form" onSubmit=${submit}>
      <${Field} label="Field"><select id="patch-field" value=${field} onChange=${(e) => { setField(e.target.value); setValue({}); }}>
        <optgroup label="One value">${ONE.map((f) => html`<option value=${f}>${f}</option>`)}</optgroup>
        <optgroup label="Many values">${[...MANY, ...Object.keys(RECORDS)].map((f) => html`<option value=${f}>${f}</option>`)}</optgroup>
        <option value="custom">custom… (a name of your own)</option></select></${Field}>
      ${field === "custom" ? html`<${Field} label="Custom field name" hint="lower case, digits, _"><input id="patch-custom" required
        pattern="[a-z][a-z0-9_]{0,39}" value=${custom} onInput=${(e) => setCustom(e.target.value)} /></${Field}>` : null}
      ${parts ? parts.map((k) => input(k, k[0].toUpperCase() + k.slice(1))) : input("value", "Value")}
      <button type="submit" id="patch-submit">${MANY.includes(field) || parts ? "Add value" : "Set value"}</button>
    </form>
    <${Notice} state=${state} />`;
}

function Person({ id, session, onGone, onChanged }) {
  const [u, setU] = useState(null);
  const [profile, setProfile] = useState(null);
  const [history, setHistory] = useState(null);
  const [name, setName] = useState("");
  const [into, setInto] = useState("");
  const [state, run] = useAction();
  const latest = useLatest();
  const fetchBoth = async () => {  // the person and the profile are drawn together, never one without the other
    const current = latest();
    const [got, prof] = await Promise.all([tool("persona", "user_get", { user_id: id }), tool("persona", "profile_get", { user_id: id })]);
    if (!current()) return;
    setU(got); setName(got.name); setProfile(prof);
  };
  const reload = () => run(fetchBoth);
  useEffect(() => { setHistory(null); setU(null); setProfile(null); reload(); }, [id]);
  if (!u || !profile) return html`<${Notice} state=${state} />`;
  const after = async (fn) => { const r = await fn(); await fetchBoth(); onChanged(); return r; };
  const act = (fn, done) => run(() => after(fn), done);
  const voice = (seconds) => act(async () => {
    const clip = await toBase64(await recordWav(seconds));
    return tool("persona", "speaker_enroll", { user_id: id, audio: clip });
  }, (r) => `Voice enrolled: voiceprint now ${JSON.stringify(r.voice_samples)}.`);
  const face = (blob) => act(async () => tool("persona", "face_enroll", { user_id: id, image: await toBase64(blob) }),
    (r) => `Face enrolled: ${r.face_samples} in all.`);
  return html`<article class="card person" aria-labelledby="person-h" data-user=${id}>
    <h2 id="person-h">${u.name} ${u.provisional ? html`<span class="tag">provisional</span>` : null}</h2>
    <p class="meta">id <code>${u.user_id}</code> · voice samples <span id="voice-count">${samples(u)}</span>
      · faces <span id="face-count">${u.face_samples}</span> · facts ${u.facts} · created ${when(u.created_at)}</p>
    <h3>Profile</h3>
    <table class="profile stack"><thead><tr><th scope="col">Field</th><th scope="col">Value</th><th scope="col">Source</th>
      <th scope="col">Confidence</th><th scope="col">First seen</th><th scope="col">Last seen</th></tr></thead>
      <tbody>${facts(profile).map(([f, x]) => html`<tr><td data-label="Field">${f}</td><td data-label="Value">${show(x.value)}</td>
        <td data-label="Source">${x.source}${x.source_ref ? ` (${x.source_ref})` : ""}</td><td data-label="Confidence">${x.confidence}</td>
        <td data-label="First seen">${when(x.first_seen)}</td><td data-label="Last seen">${when(x.last_seen)}</td></tr>`)}</tbody></table>
    ${facts(profile).length ? null : html`<p class="empty">No profile facts yet: add one below, or let the avatar learn them in conversation.</p>`}
    <${ProfileForm} id=${id} act=${after} />
    <button onClick=${() => run(async () => setHistory(history ? null : (await tool("persona", "profile_history", { user_id: id, limit: 100 })).changes))}
      aria-expanded=${history ? "true" : "false"}>Profile history</button>
    ${history ? html`<ol class="history">${history.map((c) => html`<li>${when(c.at)} <strong>${c.op}</strong> ${c.field}:
      ${c.old != null ? show(c.old) : "—"} → ${c.new != null ? show(c.new) : "—"} [${c.source}]</li>`)}</ol>` : null}
    <h3>Enroll</h3>
    <div class="actions">
      <button id="record-voice" onClick=${() => voice(3)}>Record 3 s of voice and enroll</button>
      <button id="camera-face" onClick=${() => run(snapshot).then((b) => b && face(b))}>Take a photo and enroll</button>
      <${Field} label="Or a photo file"><input id="face-file" type="file" accept="image/jpeg,image/png,image/webp"
        onChange=${(e) => e.target.files[0] && face(e.target.files[0])} /></${Field}>
    </div>
    <h3>Change</h3>
    <form class="inline" onSubmit=${(e) => { e.preventDefault(); act(() => tool("persona", "user_rename", { user_id: id, name }), () => "Renamed."); }}>
      <${Field} label="Name"><input id="rename" required value=${name} onInput=${(e) => setName(e.target.value)} /></${Field}>
      <button type="submit">Rename</button>
    </form>
    ${session.owner ? html`<form class="inline" onSubmit=${(e) => { e.preventDefault();
        if (confirm(`Merge ${u.name} into ${into}? ${u.name} ceases to exist.`)) run(async () => { await tool("persona", "user_merge", { user_id: id, into_user_id: into }); onGone(); }); }}>
      <${Field} label="Merge into user id"><input id="merge-into" required value=${into} onInput=${(e) => setInto(e.target.value)} /></${Field}>
      <button type="submit">Merge</button></form>` : null}
    <${Notice} state=${state} />
    <button class="danger" id="person-forget" onClick=${() => {
      if (confirm(`Erase ${u.name}: ${samples(u)} voice samples, ${u.face_samples} face samples, ${u.facts} profile facts and their history? This cannot be undone.`))
        run(async () => { await tool("persona", "user_forget", { user_id: id }); onGone(); });
    }}>Forget this person</button>
  </article>`;
}

export function People({ session, user, setSubject }) {
  const [users, setUsers] = useState([]);
  const [next, setNext] = useState(null);
  const [picked, setPicked] = useState(null);
  const [newName, setNewName] = useState("");
  const [state, run] = useAction();
  const listing = useLatest();
  // The owner's pick is the console's "showing user" (one subject for every page); a user token has its own.
  const selected = session.owner ? (users.some((u) => u.user_id === user) ? user : picked) : picked;
  const setSelected = (id) => { setPicked(id); if (id && setSubject) setSubject(id); };
  const load = (cursor) => run(async () => {
    const current = listing();
    const r = await tool("persona", "user_list", { limit: 50, cursor });
    if (!current()) return;  // a newer list was asked for (a user was just created): this one is stale
    setUsers(cursor ? [...users, ...r.users] : r.users);
    setNext(r.next_cursor);
    if (!session.owner && r.users.some((u) => u.user_id === user)) setPicked(user);  // a user token: its own
  });
  useEffect(() => { load(null); }, []);
  const create = (e) => {
    e.preventDefault();
    run(async () => { const u = await tool("persona", "user_create", { name: newName }); setNewName(""); await load(null); setSelected(u.user_id); });
  };
  const hasOwn = !session.owner && users.some((u) => u.user_id === user);
  return html`<div class="split">
    <section aria-labelledby="users-h">
      <h2 id="users-h">Users</h2>
      <ul class="users" id="users">${users.map((u) => html`<li>
        <button class="row" aria-pressed=${selected === u.user_id ? "true" : "false"} onClick=${() => setSelected(u.user_id)}>
          <strong>${u.name}</strong>${u.provisional ? " (provisional)" : ""}<br />
          <small>voice ${samples(u)} · faces ${u.face_samples} · facts ${u.facts}</small></button></li>`)}</ul>
      ${next ? html`<button onClick=${() => load(next)}>More</button>` : null}
      ${hasOwn ? null : html`<form class="inline" onSubmit=${create}>
        <${Field} label=${session.owner ? "New user's name" : "Your name (creates your profile)"}>
          <input id="new-user" required value=${newName} onInput=${(e) => setNewName(e.target.value)} /></${Field}>
        <button type="submit" id="create-user">Create</button>
      </form>`}
      <${Notice} state=${state} />
    </section>
    ${selected ? html`<${Person} id=${selected} session=${session} onChanged=${() => load(null)}
      onGone=${() => { setPicked(null); if (setSubject) setSubject("default"); load(null); }} />`
      : html`<p id="no-person">${session.owner ? "Pick a user: the other pages then show that user's data too."
        : "You have no profile here yet: create it with your name."}</p>`}
  </div>`;
}
