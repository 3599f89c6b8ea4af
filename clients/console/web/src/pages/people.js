// People: users (voiceprint/face counts, provisional), profile with provenance and history,
// rename / merge / forget, enroll a voice from the microphone and a face from the camera or a file.
import { useEffect, useState } from "preact/hooks";
import { tool, toBase64 } from "../api.js";
import { recordWav, snapshot } from "../media.js";
import { html, useAction, Notice, Field, when } from "../ui.js";

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

function Person({ id, session, onGone, onChanged }) {
  const [u, setU] = useState(null);
  const [profile, setProfile] = useState(null);
  const [history, setHistory] = useState(null);
  const [name, setName] = useState("");
  const [into, setInto] = useState("");
  const [patch, setPatch] = useState({ field: "preferences", value: "" });
  const [state, run] = useAction();
  const reload = () => run(async () => {
    const got = await tool("persona", "user_get", { user_id: id });
    setU(got); setName(got.name);
    setProfile(await tool("persona", "profile_get", { user_id: id }));
  });
  useEffect(() => { setHistory(null); reload(); }, [id]);
  if (!u) return html`<${Notice} state=${state} />`;
  const act = (fn, done) => run(async () => { const r = await fn(); await reload(); onChanged(); return r; }, done);
  const voice = (seconds) => act(async () => {
    const clip = await toBase64(await recordWav(seconds));
    return tool("persona", "speaker_enroll", { user_id: id, audio: clip });
  }, (r) => `Voice enrolled: voiceprint now ${JSON.stringify(r.voice_samples)}.`);
  const face = (blob) => act(async () => tool("persona", "face_enroll", { user_id: id, image: await toBase64(blob) }),
    (r) => `Face enrolled: ${r.face_samples} in all.`);
  const list = ["preferences", "identity.languages", "goals", "routines", "accessibility_notes"].includes(patch.field);
  return html`<article class="card person" aria-labelledby="person-h" data-user=${id}>
    <h2 id="person-h">${u.name} ${u.provisional ? html`<span class="tag">provisional</span>` : null}</h2>
    <p class="meta">id <code>${u.user_id}</code> · voice samples <span id="voice-count">${samples(u)}</span>
      · faces <span id="face-count">${u.face_samples}</span> · facts ${u.facts} · created ${when(u.created_at)}</p>
    <h3>Profile</h3>
    <table class="profile"><thead><tr><th scope="col">Field</th><th scope="col">Value</th><th scope="col">Source</th>
      <th scope="col">Confidence</th><th scope="col">First seen</th><th scope="col">Last seen</th></tr></thead>
      <tbody>${facts(profile).map(([f, x]) => html`<tr><td>${f}</td><td>${show(x.value)}</td><td>${x.source}${x.source_ref ? ` (${x.source_ref})` : ""}</td>
        <td>${x.confidence}</td><td>${when(x.first_seen)}</td><td>${when(x.last_seen)}</td></tr>`)}</tbody></table>
    <form class="inline" onSubmit=${(e) => { e.preventDefault(); act(() => tool("persona", "profile_update", { user_id: id,
        patches: [{ op: list ? "add" : "set", field: patch.field, value: patch.value }] }), () => "Profile updated."); }}>
      <${Field} label="Field"><input id="patch-field" value=${patch.field} onInput=${(e) => setPatch({ ...patch, field: e.target.value })} /></${Field}>
      <${Field} label="Value"><input id="patch-value" required value=${patch.value} onInput=${(e) => setPatch({ ...patch, value: e.target.value })} /></${Field}>
      <button type="submit">${list ? "Add value" : "Set value"}</button>
    </form>
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
    <button class="danger" id="person-forget" onClick=${() => {
      if (confirm(`Erase ${u.name}: ${samples(u)} voice samples, ${u.face_samples} face samples, ${u.facts} profile facts and their history? This cannot be undone.`))
        run(async () => { await tool("persona", "user_forget", { user_id: id }); onGone(); });
    }}>Forget this person</button>
    <${Notice} state=${state} />
  </article>`;
}

export function People({ session, user }) {
  const [users, setUsers] = useState([]);
  const [next, setNext] = useState(null);
  const [selected, setSelected] = useState(null);
  const [newName, setNewName] = useState("");
  const [state, run] = useAction();
  const load = (cursor) => run(async () => {
    const r = await tool("persona", "user_list", { limit: 50, cursor });
    setUsers(cursor ? [...users, ...r.users] : r.users);
    setNext(r.next_cursor);
    if (!session.owner && r.users.some((u) => u.user_id === user)) setSelected(user);  // a user token: its own
  });
  useEffect(() => { load(null); }, []);
  const create = (e) => {
    e.preventDefault();
    run(async () => { const u = await tool("persona", "user_create", { name: newName }); setNewName(""); await load(null); setSelected(u.user_id); });
  };
  return html`<div class="split">
    <section aria-labelledby="users-h">
      <h2 id="users-h">Users</h2>
      <ul class="users" id="users">${users.map((u) => html`<li>
        <button class="row" aria-pressed=${selected === u.user_id ? "true" : "false"} onClick=${() => setSelected(u.user_id)}>
          <strong>${u.name}</strong>${u.provisional ? " (provisional)" : ""}<br />
          <small>voice ${samples(u)} · faces ${u.face_samples} · facts ${u.facts}</small></button></li>`)}</ul>
      ${next ? html`<button onClick=${() => load(next)}>More</button>` : null}
      <form class="inline" onSubmit=${create}>
        <${Field} label=${session.owner ? "New user's name" : "Your name (creates your profile)"}>
          <input id="new-user" required value=${newName} onInput=${(e) => setNewName(e.target.value)} /></${Field}>
        <button type="submit" id="create-user">Create</button>
      </form>
      <${Notice} state=${state} />
    </section>
    ${selected ? html`<${Person} id=${selected} session=${session} onChanged=${() => load(null)}
      onGone=${() => { setSelected(null); load(null); }} />`
      : html`<p id="no-person">${session.owner ? "Pick a user." : "You have no profile here yet: create it with your name."}</p>`}
  </div>`;
}
