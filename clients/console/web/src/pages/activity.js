// Activity: the audit trail of the memory, persona and research servers — who read, changed or tried
// to reach this user's data (refused attempts included), through which MCP client.
import { useEffect, useState } from "preact/hooks";
import { tool } from "../api.js";
import { html, useAction, useLatest, Notice, when } from "../ui.js";

const SERVERS = ["memory", "persona", "research"];

// Who called, as a person reads it (the trail says "owner", "user:<id>" or "owner as user:<id>").
const who = (principal, me) => (principal === me ? "you" : principal === "owner" ? "the owner"
  : principal.replace(/^owner as user:/, "the owner, acting as user ").replace(/^user:/, "user "));

export function Activity({ session, user }) {
  const [rows, setRows] = useState([]);
  const [all, setAll] = useState(false);
  const [mine, setMine] = useState(false);
  const [state, run] = useAction();
  const me = session.owner ? "owner" : `user:${session.user_id}`;
  const latest = useLatest();
  const load = () => run(async () => {
    const current = latest();
    const whose = session.owner && all ? {} : { user_id: user };
    const lists = await Promise.all(SERVERS.map((s) =>
      tool(s, `${s}_audit_list`, { ...whose, limit: 100 }).then((r) => r.entries.map((e) => ({ ...e, server: s })))));
    if (current()) setRows(lists.flat().sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0)));
  });
  useEffect(() => { load(); }, [user, all]);
  // Hidden by default: your own page views through this console. The server marks the console's calls
  // itself (`via`), so a program that merely calls itself "alphaavatar-console" stays listed.
  const shown = rows.filter((e) => mine || !(e.via === "console" && e.principal === me));
  const tried = shown.filter((e) => !e.ok && e.principal !== me).length;
  return html`<p>Who read, changed or tried to reach the data of ${session.owner && all ? "any user" : html`user <strong>${user}</strong>`},
      newest first (the 100 latest per server): refused attempts are listed too, with who tried, and the MCP client
      (as it names itself) or, for this console, the console.</p>
    <div class="actions">
    ${session.owner ? html`<label><input type="checkbox" id="all-users" checked=${all} onChange=${(e) => setAll(e.target.checked)} /> every user</label>` : null}
    <label><input type="checkbox" id="show-console" checked=${mine} onChange=${(e) => setMine(e.target.checked)} /> include your own views through this console</label>
    <button id="refresh" onClick=${load}>Refresh</button></div>
    <${Notice} state=${state} />
    ${tried ? html`<p class="notice error" id="attempts">${tried} refused ${tried === 1 ? "attempt" : "attempts"} by others below.</p>` : null}
    ${shown.length ? null : html`<p class="empty" id="audit-empty">Nothing yet.</p>`}
    <table id="audit" class="stack"><thead><tr><th scope="col">When (UTC)</th><th scope="col">Server</th><th scope="col">Who</th>
      <th scope="col">Client</th><th scope="col">Access</th><th scope="col">Result</th><th scope="col">Users</th><th scope="col">Ids</th></tr></thead>
      <tbody>${shown.map((e) => html`<tr class=${e.ok ? "" : "failed"}><td data-label="When">${when(e.at)}</td><td data-label="Server">${e.server}</td>
        <td data-label="Who" title=${e.principal}>${who(e.principal, me)}</td>
        <td data-label="Client">${e.via ? `this ${e.via}` : e.client}</td><td data-label="Access">${e.kind} <code>${e.name}</code></td>
        <td data-label="Result">${e.ok ? "ok" : "refused or failed"}</td>
        <td data-label="Users">${e.user_ids.join(", ")}</td><td data-label="Ids" class="ids" title=${e.ids.join(" ")}>${e.ids.length
          ? `${e.ids.length}: ${e.ids.slice(0, 2).map((i) => i.slice(0, 8)).join(", ")}${e.ids.length > 2 ? "…" : ""}` : ""}</td></tr>`)}</tbody></table>`;
}
