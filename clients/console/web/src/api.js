// The console's one way to the servers: POST /api/call, which relays to MCP with our token.
// The bearer token lives in sessionStorage (this tab only) and is sent only as a header.

const KEY = "alphaavatar.token";
const CSRF = "alphaavatar.csrf";

export const token = () => sessionStorage.getItem(KEY);

function headers(extra = {}) {
  const h = { ...extra };
  const t = token();
  if (t) h.Authorization = `Bearer ${t}`;
  const c = sessionStorage.getItem(CSRF);
  if (c) h["X-CSRF-Token"] = c;
  return h;
}

// Sign in: null token means "try without one" (loopback with no token configured).
export async function signIn(t) {
  const h = t ? { Authorization: `Bearer ${t}` } : {};
  const r = await fetch("/api/session", { headers: h });
  if (r.status === 401) return null;
  if (!r.ok) throw new Error(`The console answered ${r.status}.`);
  const s = await r.json();
  if (t) sessionStorage.setItem(KEY, t);
  sessionStorage.setItem(CSRF, s.csrf);
  return s;
}

export function signOut() {
  sessionStorage.removeItem(KEY);
  sessionStorage.removeItem(CSRF);
}

async function post(path, body) {
  const r = await fetch(path, {
    method: "POST",
    headers: headers({ "Content-Type": "application/json" }),
    body: JSON.stringify(body),
  });
  if (!r.ok) {
    let detail = `HTTP ${r.status}`;
    try { detail = (await r.json()).error || detail; } catch (_) { /* not JSON */ }
    throw new Error(detail);
  }
  return r;
}

// A tool call: resolves to the structured result, or throws an Error with the server's message.
export async function tool(server, name, args = {}) {
  const clean = Object.fromEntries(Object.entries(args).filter(([, v]) => v !== undefined && v !== null && v !== ""));
  const r = await (await post("/api/call", { server, tool: name, arguments: clean })).json();
  if (!r.ok) throw new Error(plain(r.text) || `${name} failed`);
  return r.data;
}

// A tool error as a person reads it: without the MCP SDK's "Error executing tool x:" prefix.
const plain = (text) => String(text || "").replace(/^Error executing tool [\w.-]+: /, "");

export async function getJSON(path) {
  const r = await fetch(path, { headers: headers() });
  if (!r.ok) throw new Error(`HTTP ${r.status}`);
  return r.json();
}

// A streamed export, saved through a temporary object URL (never a URL carrying the token).
export async function download(format, user_id) {
  const r = await post("/api/export", { format, user_id });
  const blob = await r.blob();
  const name = (r.headers.get("Content-Disposition") || "").match(/filename="([^"]+)"/)?.[1] || "memories";
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  return blob.size;
}

// One typed turn with the agent, read as it streams (NDJSON): onDelta(text) for each piece of the
// reply, then resolves to {reply, memories, profile, ...} (what was in its context).
export async function chat(text, user_id, onDelta) {
  const reader = (await post("/api/chat", { text, user_id })).body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  for (;;) {
    const { value, done } = await reader.read();
    buffered += value || "";
    const lines = buffered.split("\n");
    buffered = done ? "" : lines.pop();
    for (const line of lines.filter((l) => l.trim())) {
      const event = JSON.parse(line);
      if (event.error) throw new Error(event.error);
      if ("delta" in event) onDelta(event.delta);
      else return event;
    }
    if (done) throw new Error("The chat ended without a reply.");
  }
}

export async function upload(file, user_id) {
  const data = await toBase64(file);
  const r = await (await post("/api/corpus/upload", { name: file.name, data, user_id })).json();
  if (!r.ok) throw new Error(r.text);
  return r.data;
}

export function toBase64(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(",", 2)[1]);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}
