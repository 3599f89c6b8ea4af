// Avatar: the character viewer; chatting with the agent needs an LLM, and says what to set without one.
import { html } from "../ui.js";

export function Avatar({ session }) {
  const viewer = session.auth_required
    ? html`<p>The character viewer is at <a href="/character/">/character/</a>; with tokens configured it needs the token, so open it from a host that sends one.</p>`
    : html`<iframe class="viewer" src="/character/" title="The avatar's character"></iframe>`;
  return html`<div class="split">${viewer}<section aria-labelledby="chat-h"><h2 id="chat-h">Chat</h2>
    ${session.llm
      ? html`<p id="chat-missing">An LLM is configured, but chat in the console is not built yet: talk to the agent with
          <code>alphaavatar chat clients/examples/openai-compatible.yaml</code>; the character above follows it.</p>`
      : html`<p id="chat-missing">Chat with the agent needs an LLM. Set <code>ALPHAAVATAR_LLM_MODEL</code> (e.g. gpt-4o-mini)
          and <code>OPENAI_BASE_URL</code> and/or <code>OPENAI_API_KEY</code> for an OpenAI-compatible endpoint, then restart
          <code>alphaavatar up</code>.</p>`}
  </section></div>`;
}
