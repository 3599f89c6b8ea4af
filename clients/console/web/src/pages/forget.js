// "Forget me": first count exactly what each server holds for the user, then erase it on confirmation.
import { useRef, useState } from "preact/hooks";
import { tool } from "../api.js";
import { html, useAction, Notice } from "../ui.js";

async function inventory(session, user) {
  const memories = {};
  for (const scope of ["user", "session", "tool"]) {
    memories[scope] = (await tool("memory", "memory_list", { user_id: user, scope, limit: 1 })).total;
  }
  // A user token's persona record is made on its first persona call: look it up without making it.
  let person = null;
  if (session.owner) {
    try { person = await tool("persona", "user_get", { user_id: user }); } catch (_) { /* no persona record */ }
  } else {
    person = (await tool("persona", "user_list", { limit: 1 })).users.find((u) => u.user_id === user) || null;
  }
  const docs = [];
  let cursor;
  do {
    const r = await tool("research", "corpus_list", { user_id: user, limit: 100, cursor });
    docs.push(...r.documents.filter((d) => d.user_id === user));
    cursor = r.next_cursor;
  } while (cursor);
  return { memories, person, docs };
}

export function ForgetMe({ session, user, onDone }) {
  const [plan, setPlan] = useState(null);
  const [state, run] = useAction();
  const opener = useRef(null);
  const close = () => { setPlan(null); opener.current?.focus(); };  // focus goes back where it came from
  const ask = () => run(async () => setPlan(await inventory(session, user)));
  const erase = () => run(async () => {
    const out = [];
    const m = await tool("memory", "memory_forget_user", { user_id: user });
    out.push(`${m.memories_deleted} memories, ${m.history_events_deleted} history events, ${m.exports_deleted} exports`);
    if (plan.person) {
      const p = await tool("persona", "user_forget", { user_id: user });
      out.push(`${p.voice_samples} voice and ${p.face_samples} face samples, ${p.history_entries} profile history entries`);
    }
    const r = await tool("research", "research_forget_user", { user_id: user });
    out.push(`${r.documents_deleted} corpus documents, ${r.jobs_deleted} research jobs`);
    setPlan(null);
    onDone();
    return out;
  }, (out) => `Erased ${out.join("; ")}.`);
  const total = plan ? Object.values(plan.memories).reduce((a, b) => a + b, 0) : 0;
  return html`<div class="forget">
    <button class="danger" id="forget" ref=${opener} onClick=${ask}>${session.owner ? `Forget user “${user}”…` : "Forget me…"}</button>
    ${plan ? html`<div class="confirm" role="alertdialog" aria-labelledby="forget-h" aria-describedby="forget-list">
      <h3 id="forget-h">Erase everything about user “${user}”? This cannot be undone.</h3>
      <ul id="forget-list">
        <li>Memory: ${total} memories (${plan.memories.user} user, ${plan.memories.session} session, ${plan.memories.tool} tool-call), their history, their exports, and the memory server's activity record of this user.</li>
        <li>Persona: ${plan.person
          ? `${Object.values(plan.person.voice_samples).reduce((a, b) => a + b, 0)} voice samples, ${plan.person.face_samples} face samples, ${plan.person.facts} profile facts with their history, and the persona server's activity record.`
          : "nothing (no persona record for this user)."}</li>
        <li>Knowledge: ${plan.docs.length} corpus document(s) added for this user${plan.docs.length ? ": " + plan.docs.map((d) => d.title).join(", ") : ""}, the research jobs this user started or that read them, and the research server's activity record of this user.</li>
        <li>Kept: memories shared by the avatar (scope avatar) and the shared corpus.</li>
      </ul>
      <button class="danger" id="forget-confirm" onClick=${erase}>Erase all of this</button>
      <button id="forget-cancel" onClick=${close}>Cancel</button>
    </div>` : null}
    <${Notice} state=${state} />
  </div>`;
}
