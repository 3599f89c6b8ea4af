// Status: what `alphaavatar doctor` reports, live — servers and models from /healthz, configuration.
import { useEffect, useState } from "preact/hooks";
import { getJSON } from "../api.js";
import { html, useAction, Notice } from "../ui.js";

// A health value as words: yes/no for flags, "none" for an empty record, "key: value" for the rest.
const show = (v) => {
  if (typeof v === "boolean") return v ? "yes" : "no";
  if (v === null || v === undefined) return "—";
  if (Array.isArray(v)) return v.length ? v.map(show).join(", ") : "none";
  if (typeof v === "object") {
    const parts = Object.entries(v);
    return parts.length ? parts.map(([k, x]) => `${k}: ${show(x)}`).join("; ") : "none";
  }
  return String(v);
};

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
      <table id="servers" class="stack"><thead><tr><th scope="col">Server</th><th scope="col">Part</th><th scope="col">State</th></tr></thead>
      <tbody>${Object.entries(health.servers).flatMap(([name, parts]) => Object.entries(
        Object.keys(parts).length ? parts : { server: "running (nothing to load)" }).map(([k, v]) =>
        html`<tr><td data-label="Server">${name}</td><td data-label="Part">${k.replaceAll("_", " ")}</td><td data-label="State">${show(v)}</td></tr>`))}</tbody></table>` : null}
    ${conf ? html`<h2>Configuration</h2><dl class="conf">
      <dt>LLM</dt><dd>${conf.llm || "none — set ALPHAAVATAR_LLM_MODEL and OPENAI_BASE_URL / OPENAI_API_KEY for fact extraction, profile_extract and research answers"}</dd>
      <dt>Tavily</dt><dd>${conf.tavily ? "TAVILY_API_KEY set" : "none — web search off (the local corpus still works): set TAVILY_API_KEY"}</dd>
      <dt>Vector store</dt><dd>${conf.store}</dd>
      <dt>Tokens</dt><dd>owner ${conf.tokens.owner ? "set" : "none"}, ${conf.tokens.users} user token(s)</dd>
      ${conf.store_bytes != null ? html`<dt>Data</dt><dd>${(conf.store_bytes / 1e6).toFixed(1)} MB in ${conf.home}</dd>` : null}
    </dl>` : null}`;
}
