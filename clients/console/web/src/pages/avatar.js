// Avatar: the character viewer beside a chat with the agent; each reply shows what was in its
// context ("why it said that"). Without an LLM the page says what to set.
import { useState } from "preact/hooks";
import { chat } from "../api.js";
import { html, useAction, Notice, Field, when } from "../ui.js";

const show = (v) => (Array.isArray(v) ? v.map(show).join(", ")
  : typeof v === "object" && v !== null ? ("value" in v ? show(v.value) : Object.entries(v).map(([k, x]) => `${k}: ${show(x)}`).join("; "))
  : String(v));

function Why({ turn }) {
  const facts = Object.entries(turn.profile || {}).filter(([k]) => !["user_id", "provisional"].includes(k));
  return html`<details class="why"><summary>Why it said that</summary>
    <p>In its context for user <code>${turn.user_id}</code>:</p>
    <h4>Memories (${turn.memories.length})</h4>
    <ul class="why-memories">${turn.memories.map((m) => html`<li>${m.content} <small>${when(m.occurred_at)}${m.score != null ? ` · ${m.score.toFixed(3)}` : ""}</small></li>`)}</ul>
    <h4>Profile</h4>
    ${facts.length ? html`<ul>${facts.map(([k, v]) => html`<li><strong>${k}</strong>: ${show(v)}</li>`)}</ul>` : html`<p>none</p>`}
    ${turn.late.length || turn.failed.length ? html`<p class="notice">Not in time: ${[...turn.late, ...turn.failed].join(", ")}</p>` : null}
  </details>`;
}

export function Avatar({ session, user }) {
  const [turns, setTurns] = useState([]);
  const [text, setText] = useState("");
  const [state, run] = useAction();
  // The embedded viewer reads the signed-in token from this tab's sessionStorage (same origin) and
  // offers it as a WebSocket subprotocol: never in a URL.
  const viewer = session.owner
    ? html`<iframe class="viewer" id="viewer" src="/character/" title="The avatar's character"></iframe>`
    : html`<p id="viewer-owners">The character is the avatar's shared stage, seen by everyone it talks to, so watching it
        takes the owner's token; a user token's chat goes on without it.</p>`;
  const send = (e) => {
    e.preventDefault();
    const said = text.trim();
    if (!said) return;
    setText("");
    const done = turns;
    run(async () => {
      let partial = "";
      try {
        const t = await chat(said, user, (piece) => {
          partial += piece;
          setTurns([...done, { said, reply: partial, streaming: true }]);
        });
        setTurns([...done, { said, ...t }]);
      } catch (e) {
        setTurns(done); // a reply cut short is not shown as if it were whole
        throw e;
      }
    });
  };
  if (!session.llm) {
    return html`<div class="split">${viewer}<section aria-labelledby="chat-h"><h2 id="chat-h">Chat</h2>
      <p id="chat-missing">Chat with the agent needs an LLM. Set <code>ALPHAAVATAR_LLM_MODEL</code> (e.g. gpt-4o-mini)
        and <code>OPENAI_BASE_URL</code> and/or <code>OPENAI_API_KEY</code> for an OpenAI-compatible endpoint, then restart${" "}
        <code>alphaavatar up</code>.</p></section></div>`;
  }
  return html`<div class="split">${viewer}<section aria-labelledby="chat-h"><h2 id="chat-h">Chat as ${user}</h2>
    <ol class="chat" id="chat" aria-live="polite">${turns.map((t) => html`<li>
      <p class="said"><strong>You:</strong> ${t.said}</p><p class="reply" aria-busy=${t.streaming ? "true" : "false"}><strong>Alpha:</strong> <span class="reply-text">${t.reply}</span></p>
      ${t.streaming ? null : html`<${Why} turn=${t} />`}</li>`)}</ol>
    <form class="inline" onSubmit=${send}>
      <${Field} label="Say something"><input id="chat-text" value=${text} onInput=${(e) => setText(e.target.value)} required maxlength="4000" /></${Field}>
      <button type="submit" id="chat-send" disabled=${state.busy}>Send</button>
    </form>
    <${Notice} state=${state} />
  </section></div>`;
}
