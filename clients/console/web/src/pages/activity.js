// Activity: the audit trail of the memory, persona and research servers — who read or wrote what.
import { useEffect, useState } from "preact/hooks";
import { tool } from "../api.js";
import { html, useAction, Notice, when } from "../ui.js";

const SERVERS = ["memory", "persona", "research"];

export function Activity({ session, user }) {
  const [rows, setRows] = useState([]);
  const [all, setAll] = useState(false);
  const [mine, setMine] = useState(false);
  const [state, run] = useAction();
  const load = () => run(async () => {
    const who = session.owner && all ? {} : { user_id: user };
    const lists = await Promise.all(SERVERS.map((s) =>
      tool(s, `${s}_audit_list`, { ...who, limit: 100 }).then((r) => r.entries.map((e) => ({ ...e, server: s })))));
    setRows(lists.flat().sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0)));
  });
  useEffect(() => { load(); }, [user, all]);
  return html`<p>Every tool call, resource read and prompt that concerned ${session.owner && all ? "any user" : html`user <strong>${user}</strong>`},
      newest first (the 100 latest per server), with the MCP client that made it. This console is <code>alphaavatar-console</code>.</p>
    <div class="actions">
    ${session.owner ? html`<label><input type="checkbox" id="all-users" checked=${all} onChange=${(e) => setAll(e.target.checked)} /> every user</label>` : null}
    <label><input type="checkbox" id="show-console" checked=${mine} onChange=${(e) => setMine(e.target.checked)} /> include this console's own accesses</label>
    <button id="refresh" onClick=${load}>Refresh</button></div>
    <${Notice} state=${state} />
    <div class="scroll"><table id="audit"><thead><tr><th scope="col">When (UTC)</th><th scope="col">Server</th><th scope="col">Client</th>
      <th scope="col">Principal</th><th scope="col">Access</th><th scope="col">Result</th><th scope="col">Users</th><th scope="col">Ids</th></tr></thead>
      <tbody>${rows.filter((e) => mine || e.client !== "alphaavatar-console").map((e) => html`<tr class=${e.ok ? "" : "failed"}><td>${when(e.at)}</td><td>${e.server}</td><td>${e.client}</td>
        <td>${e.principal}</td><td>${e.kind} <code>${e.name}</code></td><td>${e.ok ? "ok" : "refused or failed"}</td>
        <td>${e.user_ids.join(", ")}</td><td class="ids" title=${e.ids.join(" ")}>${e.ids.length ? `${e.ids.length}: ${e.ids.slice(0, 2).map((i) => i.slice(0, 8)).join(", ")}${e.ids.length > 2 ? "…" : ""}` : ""}</td></tr>`)}</tbody></table></div>`;
}
