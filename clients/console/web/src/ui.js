// Small shared pieces: htm bound to preact, a status line, an error-catching action runner.
import { h } from "preact";
import { useRef, useState } from "preact/hooks";
import htm from "htm";

// The build compiles every html`…` to h() calls (build.mjs), leaving this unused: pure, so it is dropped.
export const html = /* @__PURE__ */ htm.bind(h);

// Runs an async action, keeping "busy" and the message (role=status, read by screen readers).
export function useAction() {
  const [state, set] = useState({ busy: false, error: null, note: null });
  const run = async (fn, done) => {
    set({ busy: true, error: null, note: null });
    try {
      const out = await fn();
      set({ busy: false, error: null, note: done ? done(out) : null });
      return out;
    } catch (e) {
      set({ busy: false, error: e.message || String(e), note: null });
      return undefined;
    }
  };
  return [state, run];
}

// Answers that arrive after a newer request (the shown user changed mid-load) are dropped, not drawn.
export function useLatest() {
  const seq = useRef(0);
  return () => { const mine = ++seq.current; return () => mine === seq.current; };
}

export function Notice({ state }) {
  return html`<p class="notice ${state.error ? "error" : ""}" role=${state.error ? "alert" : "status"} aria-live="polite">
    ${state.busy ? "Working…" : state.error || state.note || ""}</p>`;
}

export const when = (iso) => (iso ? String(iso).replace("T", " ").slice(0, 19) : "—");

export function Field({ label, children, hint }) {
  return html`<label class="field"><span>${label}</span>${children}${hint ? html`<small>${hint}</small>` : null}</label>`;
}
