// Status: what `alphaavatar doctor` reports, live — servers and models from /healthz, configuration.
import { useEffect, useState } from "preact/hooks";
import { getJSON } from "../api.js";
import { html, useAction, Notice } from "../ui.js";

const show = (v) => (typeof v === "object" && v !== null ? JSON.stringify(v) : String(v));

export function Status() {
  const [health, setHealth] = useState(null);
  const [conf, setConf] = useState(null);
  const [state, run] = useAction();
  const live = async () => setHealth(await (await fetch("/healthz")).json());
  useEffect(() => {
    run(async () => { await live(); setConf(await getJSON("/api/status")); });
    const t = setInterval(() => live().catch(() => {}), 5000);  // the servers, live; the configuration once
    return () => clearInterval(t);
  }, []);
  return html`<${Notice} state=${state} />
    ${health ? html`<h2>Servers: <span id="health">${health.status}</span></h2>
      <table id="servers"><thead><tr><th scope="col">Server</th><th scope="col">Part</th><th scope="col">State</th></tr></thead>
      <tbody>${Object.entries(health.servers).flatMap(([name, parts]) => Object.entries(parts).map(([k, v]) =>
        html`<tr><td>${name}</td><td>${k}</td><td>${show(v)}</td></tr>`))}</tbody></table>` : null}
    ${conf ? html`<h2>Configuration</h2><dl class="conf">
      <dt>LLM</dt><dd>${conf.llm || "none — set ALPHAAVATAR_LLM_MODEL and OPENAI_BASE_URL / OPENAI_API_KEY for fact extraction, profile_extract and research answers"}</dd>
      <dt>Tavily</dt><dd>${conf.tavily ? "TAVILY_API_KEY set" : "none — web search off (the local corpus still works): set TAVILY_API_KEY"}</dd>
      <dt>Vector store</dt><dd>${conf.store}</dd>
      <dt>Tokens</dt><dd>owner ${conf.tokens.owner ? "set" : "none"}, ${conf.tokens.users} user token(s)</dd>
      ${conf.store_bytes != null ? html`<dt>Data</dt><dd>${(conf.store_bytes / 1e6).toFixed(1)} MB in ${conf.home}</dd>` : null}
    </dl>` : null}`;
}
