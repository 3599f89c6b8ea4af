// AlphaAvatar built-in viewer: draws the character from hub events (protocol v1), no external assets.
// Test hooks: the <svg> carries data-emotion / data-state / data-mouth / data-seq, and
// window.__alphaavatar.log holds {seq, kind, ts, shown} for every event (shown = the
// requestAnimationFrame time, epoch ms, of the first frame that displayed it).
"use strict";
(function () {
  const svg = document.getElementById("avatar");
  const $ = (id) => document.getElementById(id);
  const EMOTIONS = {
    //          brow lift, brow tilt (+ = inner up), eye open, smile, mouth width, open, blush, head tilt, pupil
    neutral:   { by: 0,   bt: 0,   eye: 1.0,  smile: 0.15, mw: 30, open: 0.0,  blush: 0.1, tilt: 0,  pupil: 1.0 },
    happy:     { by: -6,  bt: -4,  eye: 0.72, smile: 1.0,  mw: 44, open: 0.25, blush: 0.7, tilt: 3,  pupil: 1.0 },
    sad:       { by: 4,   bt: 18,  eye: 0.7,  smile: -0.8, mw: 28, open: 0.0,  blush: 0.0, tilt: -4, pupil: 0.9 },
    angry:     { by: 6,   bt: -22, eye: 0.8,  smile: -0.6, mw: 34, open: 0.1,  blush: 0.0, tilt: 0,  pupil: 0.8 },
    think:     { by: -4,  bt: 8,   eye: 0.78, smile: -0.1, mw: 18, open: 0.0,  blush: 0.0, tilt: 6,  pupil: 0.95 },
    surprised: { by: -18, bt: 4,   eye: 1.25, smile: 0.0,  mw: 20, open: 0.75, blush: 0.2, tilt: 0,  pupil: 0.8 },
    awkward:   { by: -2,  bt: 12,  eye: 0.85, smile: 0.25, mw: 32, open: 0.0,  blush: 0.5, tilt: -5, pupil: 0.9 },
    question:  { by: -10, bt: 6,   eye: 1.05, smile: -0.1, mw: 22, open: 0.1,  blush: 0.1, tilt: 9,  pupil: 1.0 },
    curious:   { by: -10, bt: 2,   eye: 1.12, smile: 0.35, mw: 26, open: 0.15, blush: 0.3, tilt: -7, pupil: 1.25 },
  };
  const VISEME_WIDTH = { sil: 1, PP: 0.9, FF: 1, TH: 1, DD: 1, kk: 1, CH: 0.8, SS: 1.1, nn: 1, RR: 0.85,
                         aa: 1.1, E: 1.15, ih: 1.2, oh: 0.75, ou: 0.6 };
  const MOTIONS = { nod: 900, shake: 900, wave: 1200, bow: 1400, tilt: 1000, bounce: 800 };
  const keys = Object.keys(EMOTIONS.neutral);
  const lerp = (a, b, k) => a + (b - a) * k;
  const ease = (k) => (k < 0.5 ? 2 * k * k : 1 - Math.pow(-2 * k + 2, 2) / 2);
  const clamp = (v, lo, hi) => Math.max(lo, Math.min(hi, v));
  const wall = (t) => performance.timeOrigin + t;

  const hooks = (window.__alphaavatar = { log: [], events: 0, connected: false, reconnects: 0 });
  let pending = [];                     // events applied since the last frame
  let expr = { name: "neutral", from: { ...EMOTIONS.neutral }, to: { ...EMOTIONS.neutral }, t0: 0, dur: 1, until: 0, fadeOut: 300 };
  let shown = { ...EMOTIONS.neutral };
  let gaze = { x: 0, y: 0 }, gazeShown = { x: 0, y: 0 };
  let speech = null;                    // {t0, frame, mouth[], visemes[], duration}
  let liveMouth = 0, liveMouthAt = -1e9;
  let motion = null;                    // {name, t0, dur, k}
  let nextBlink = performance.now() + 1500, blinkT0 = -1e9;
  const params = {};

  function blend(name, intensity) {
    const target = EMOTIONS[name] || EMOTIONS.neutral, out = {};
    for (const k of keys) out[k] = lerp(EMOTIONS.neutral[k], target[k], clamp(intensity, 0, 1));
    return out;
  }

  function apply(ev, now) {
    switch (ev.kind) {
      case "expression":
        expr = { name: ev.emotion, from: { ...shown }, to: blend(ev.emotion, ev.intensity ?? 1), t0: now,
                 dur: Math.max(1, ev.fade_in_ms ?? 150), until: ev.duration_ms ? now + ev.duration_ms : 0,
                 fadeOut: Math.max(1, ev.fade_out_ms ?? 300) };
        svg.dataset.emotion = ev.emotion;
        svg.dataset.intensity = String(ev.intensity ?? 1);
        break;
      case "state": svg.dataset.state = ev.state; break;
      case "gaze": gaze = { x: ev.x, y: ev.y }; break;
      case "param":
        params[ev.name] = ev.value;
        if (ev.name === "mouth_open") { liveMouth = ev.value; liveMouthAt = now; }
        break;
      case "speech":
        if (ev.start_ms && speech && speech.id === ev.utterance_id) {   // streamed continuation
          speech.mouth = speech.mouth.concat(ev.mouth); speech.visemes = speech.visemes.concat(ev.visemes);
          speech.duration = Math.max(speech.duration, ev.duration_ms);
        } else {
          speech = { id: ev.utterance_id, t0: now, frame: ev.frame_ms || 20, mouth: ev.mouth || [],
                     visemes: ev.visemes || [], duration: ev.duration_ms || (ev.mouth || []).length * 20 };
        }
        svg.dataset.utterance = ev.utterance_id || "";
        break;
      case "motion": motion = { name: ev.name, t0: now, dur: MOTIONS[ev.name] || 1000, k: ev.intensity ?? 1 };
        svg.dataset.motion = ev.name; break;
      case "interrupt": speech = null; liveMouth = 0; svg.dataset.utterance = ""; break;
    }
    svg.dataset.seq = String(ev.seq);
  }

  function mouthNow(now) {
    let open = 0, width = 1;
    if (speech) {
      const t = now - speech.t0;
      if (t > speech.duration + 100) speech = null;
      else {
        const i = Math.floor(t / speech.frame);
        if (speech.mouth.length) open = speech.mouth[clamp(i, 0, speech.mouth.length - 1)] || 0;
        for (const v of speech.visemes) if (t >= v.t_ms && t < v.t_ms + v.dur_ms) { width = VISEME_WIDTH[v.viseme] || 1; break; }
        if (i >= speech.mouth.length && speech.mouth.length) open = 0;
      }
    }
    if (now - liveMouthAt < 250) open = Math.max(open, liveMouth);
    return { open: clamp(open, 0, 1), width };
  }

  function motionTransform(now) {
    if (!motion) return "";
    const k = (now - motion.t0) / motion.dur;
    if (k >= 1) { motion = null; svg.dataset.motion = ""; return ""; }
    const s = Math.sin(k * Math.PI * 4) * (1 - k) * motion.k, b = Math.sin(k * Math.PI) * motion.k;
    switch (motion.name) {
      case "nod": return `translate(0 ${12 * s})`;
      case "shake": return `rotate(${10 * s} 200 220)`;
      case "wave": return `rotate(${6 * Math.sin(k * Math.PI * 6) * (1 - k)} 200 380)`;
      case "bow": return `translate(0 ${30 * b}) scale(1 ${1 - 0.06 * b})`;
      case "tilt": return `rotate(${14 * b} 200 220)`;
      case "bounce": return `translate(0 ${-26 * Math.abs(Math.sin(k * Math.PI * 2)) * (1 - k)})`;
      default: return "";
    }
  }

  function draw(now) {
    // expression: fade in, hold, fade out to neutral
    if (expr.until && now >= expr.until) {
      expr = { name: "neutral", from: { ...shown }, to: { ...EMOTIONS.neutral }, t0: now, dur: expr.fadeOut, until: 0, fadeOut: 300 };
      svg.dataset.emotion = "neutral";
    }
    const k = ease(clamp((now - expr.t0) / expr.dur, 0, 1));
    for (const key of keys) shown[key] = lerp(expr.from[key], expr.to[key], k);
    gazeShown.x = lerp(gazeShown.x, gaze.x, 0.25); gazeShown.y = lerp(gazeShown.y, gaze.y, 0.25);

    // blink every 2–6 s; eye_open param overrides
    if (now >= nextBlink) { blinkT0 = now; nextBlink = now + 2000 + Math.random() * 4000; }
    const bk = (now - blinkT0) / 140, blink = bk >= 0 && bk < 1 ? Math.sin(bk * Math.PI) : 0;
    const eyeParam = params.eye_open ?? 1;
    const eyeOpen = clamp(shown.eye * eyeParam * (1 - blink * 0.95), 0.03, 1.4);
    svg.dataset.blink = blink > 0.5 ? "1" : "0";
    // the eyes: the left one (the right one is a <use> of it, index.html)
    const eye = $("eye-l"), pupil = eye.querySelector(".pupil"), lid = eye.querySelector(".lid");
    const ry = 31 * Math.max(1, Math.min(eyeOpen, 1.25)), rx = 27 * (eyeOpen > 1 ? 1 + (eyeOpen - 1) * 0.3 : 1);
    for (const shape of eye.querySelectorAll(".sclera, .clip, .rim")) {
      shape.setAttribute("rx", rx.toFixed(2)); shape.setAttribute("ry", ry.toFixed(2));
    }
    pupil.setAttribute("transform", `translate(${(gazeShown.x * 10).toFixed(2)} ${(-gazeShown.y * 9).toFixed(2)}) scale(${shown.pupil.toFixed(3)} ${Math.min(1, eyeOpen * 1.1).toFixed(3)})`);
    // a lid covering the top of the eye when it is less than fully open (happy squint, sleepy, blink)
    const cover = clamp(1 - eyeOpen, 0, 1);
    lid.setAttribute("d", cover > 0.02 ? `M-30 ${-ry - 4} L30 ${-ry - 4} L30 ${(-ry + 2 * ry * cover).toFixed(2)} Q0 ${(-ry + 2 * ry * cover + 6).toFixed(2)} -30 ${(-ry + 2 * ry * cover).toFixed(2)} Z` : "");
    // brows: lift and inner tilt (mirrored)
    const brow = (x0, x1, inner, side) => {
      const yi = 160 + shown.by - (side * 0 + shown.bt * 0.5), yo = 160 + shown.by + shown.bt * 0.5;
      return inner === "right" ? `M${x0} ${yo.toFixed(2)} Q${(x0 + x1) / 2} ${(Math.min(yo, yi) - 6).toFixed(2)} ${x1} ${yi.toFixed(2)}`
                               : `M${x0} ${yi.toFixed(2)} Q${(x0 + x1) / 2} ${(Math.min(yo, yi) - 6).toFixed(2)} ${x1} ${yo.toFixed(2)}`;
    };
    $("brow-l").setAttribute("d", brow(118, 172, "right", 0));
    $("brow-r").setAttribute("d", brow(228, 282, "left", 1));
    // mouth: width, smile curve, openness (speech overrides the expression's resting openness)
    const m = mouthNow(now);
    const open = Math.max(shown.open * (m.open > 0 ? 0.3 : 1), m.open);
    const w = shown.mw * m.width * (1 - 0.25 * m.open) + 6, cy = 300, smile = shown.smile * 16;
    const upper = cy - smile * 0.3, lower = cy + smile + open * 46 + 2;
    $("mouth").setAttribute("d", `M${(200 - w).toFixed(2)} ${(cy - smile * 0.6).toFixed(2)} Q200 ${upper.toFixed(2)} ${(200 + w).toFixed(2)} ${(cy - smile * 0.6).toFixed(2)} Q200 ${lower.toFixed(2)} ${(200 - w).toFixed(2)} ${(cy - smile * 0.6).toFixed(2)} Z`);
    $("tongue").setAttribute("d", open > 0.35 ? `M${(200 - w * 0.5).toFixed(2)} ${(lower - 8).toFixed(2)} Q200 ${(lower - 22 * open).toFixed(2)} ${(200 + w * 0.5).toFixed(2)} ${(lower - 8).toFixed(2)} Q200 ${(lower - 1).toFixed(2)} ${(200 - w * 0.5).toFixed(2)} ${(lower - 8).toFixed(2)} Z` : "");
    svg.dataset.mouth = m.open.toFixed(3);
    for (const b of document.querySelectorAll(".blush")) b.style.opacity = clamp(shown.blush * (params.blush ?? 1), 0, 1).toFixed(3);
    for (const name of Object.keys(EMOTIONS)) {
      const fx = $("fx-" + name);
      if (fx) fx.style.opacity = expr.name === name ? (k * 0.9).toFixed(3) : "0";
    }
    const hx = (params.head_x ?? 0) * 8 + gazeShown.x * 4, tilt = shown.tilt + (params.head_z ?? 0) * 10;
    $("head").setAttribute("transform", `${motionTransform(now)} translate(${hx.toFixed(2)} ${(-gazeShown.y * 3).toFixed(2)}) rotate(${tilt.toFixed(2)} 200 240)`);
  }

  function frame(t) {
    const now = performance.now();
    for (const ev of pending) hooks.log.push({ seq: ev.seq, kind: ev.kind, ts: ev.ts, shown: wall(t) });
    if (hooks.log.length > 20000) hooks.log.splice(0, hooks.log.length - 20000);
    pending = [];
    draw(now);
    requestAnimationFrame(frame);
  }

  // With tokens configured the hub needs the owner's. It never goes in a URL: the page offers it as a
  // WebSocket subprotocol beside "alphaavatar.bearer" (the hub answers with that one). The token is
  // typed here (kept apart from the console's, so typing one here never signs the console in) or the
  // console's (sessionStorage, shared with this page when the console embeds it).
  const OWN_KEY = "alphaavatar.viewer-token", CONSOLE_KEY = "alphaavatar.token";
  const b64url = (text) => btoa(String.fromCharCode(...new TextEncoder().encode(text)))
    .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  $("signin").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem(OWN_KEY, $("token").value.trim());
    $("token").value = "";
    $("signin").hidden = true;
  });

  function refused(token) {
    $("why").textContent = token
      ? "The hub refused this token. The character is the avatar's shared stage, seen by everyone it talks to: "
        + "watching it takes the owner's token (ALPHAAVATAR_TOKEN), not a user-scoped one."
      : "Tokens are configured: watching the character takes the owner's token (ALPHAAVATAR_TOKEN).";
    $("signin").hidden = false;
  }

  function connect(delay) {
    const url = new URL("ws", location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    const token = sessionStorage.getItem(OWN_KEY) || sessionStorage.getItem(CONSOLE_KEY);
    const ws = token ? new WebSocket(url, ["alphaavatar.bearer", b64url(token)]) : new WebSocket(url);
    let opened = false;
    ws.onopen = () => {
      opened = true;
      hooks.connected = true; svg.dataset.connected = "true"; delay = 500;
      $("signin").hidden = true;
      $("label").textContent = "connected";
      ws.send(JSON.stringify({ type: "hello", name: "viewer" }));
    };
    ws.onmessage = (msg) => {
      const now = performance.now();
      for (const line of String(msg.data).split("\n")) {
        if (!line) continue;
        let ev; try { ev = JSON.parse(line); } catch (e) { continue; }
        apply(ev, now); pending.push(ev); hooks.events++;
      }
      $("label").textContent = `${svg.dataset.emotion} · ${svg.dataset.state}`;
    };
    ws.onclose = () => {
      hooks.connected = false; svg.dataset.connected = "false"; hooks.reconnects++;
      $("label").textContent = "reconnecting…";
      if (!opened) refused(token);
      setTimeout(() => connect(Math.min(delay * 2, 5000)), delay);
    };
  }

  connect(500);
  requestAnimationFrame(frame);
})();
