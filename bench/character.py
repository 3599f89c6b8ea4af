"""Character figures, one run, printed as a table (and `--json OUT`).

1. Event → rendered in Chromium: `character_express` over MCP (streamable HTTP) against
   `alphaavatar serve character`, the built-in viewer open in headless Chromium; latency from
   the event's hub timestamp to the page's requestAnimationFrame that shows it (p50/p95),
   and from the tool call's start to that frame.
2. Fan-out: a hub process (this file with `--serve-hub`) publishes 50 events/s (mouth frames,
   gaze, expressions, states) to 50 WebSocket renderers for `--seconds`: dropped expression/
   state events, mouth frames delivered vs coalesced, delivery p50/p95, hub CPU and memory.
3. Lip-sync cost: the mouth envelope per second of 16 kHz speech (espeak-ng), and visemes.

`--screenshots` saves a PNG of the viewer per expression (and one speaking) in bench/out/.
Usage: .venv/bin/python bench/character.py [--seconds 60] [--screenshots] [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.figures import save  # noqa: E402
from bench.memory_latency import pct  # noqa: E402

OUT = ROOT / "bench" / "out"
MIX = [("param", 40), ("gaze", 4), ("expression", 3), ("state", 3)]  # events per second, 50 in all


# --- 1. event → rendered in Chromium ------------------------------------------------------------------
async def browser_latency(n: int, screenshots: bool) -> dict[str, Any]:
    from character_bridge.protocol import EMOTIONS
    from tests.support import call, http_server, http_session, server_env
    from tests.test_character_browser import chromium, wait_page

    with tempfile.TemporaryDirectory() as home, \
            http_server(["serve", "character", "--transport", "http"], server_env(Path(home))) as base, \
            chromium() as driver:
        driver.get(f"{base}/")
        wait_page(driver, lambda s: s["connected"] == "true")
        calls: dict[int, float] = {}
        async with http_session(f"{base}/mcp") as session:
            if screenshots:
                OUT.mkdir(parents=True, exist_ok=True)
                for emotion in EMOTIONS:
                    await call(session, "character_express", {"emotion": emotion, "intensity": 1.0, "fade_in_ms": 0})
                    wait_page(driver, lambda s, e=emotion: s["emotion"] == e)
                    time.sleep(0.35)
                    driver.save_screenshot(str(OUT / f"character_{emotion}.png"))
                await call(session, "character_express", {"emotion": "happy", "fade_in_ms": 0})
                await call(session, "character_speak", {"text": "Ah, wonderful to see you again!"})
                wait_page(driver, lambda s: float(s["mouth"]) > 0.6, within=5)
                driver.save_screenshot(str(OUT / "character_speaking.png"))
                await call(session, "character_interrupt", {})
            for i in range(n):
                t0 = time.time() * 1000
                res = await call(session, "character_express", {"emotion": EMOTIONS[i % len(EMOTIONS)]})
                calls[res.data["seq"]] = t0
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.5)
        log = driver.execute_script("return window.__alphaavatar.log")
    rendered = [e for e in log if e["seq"] in calls]
    hub_to_frame = [e["shown"] - e["ts"] for e in rendered]
    call_to_frame = [e["shown"] - calls[e["seq"]] for e in rendered]
    return {"events": n, "rendered": len(rendered),
            "event_to_frame_p50_ms": pct(hub_to_frame, 0.5), "event_to_frame_p95_ms": pct(hub_to_frame, 0.95),
            "call_to_frame_p50_ms": pct(call_to_frame, 0.5), "call_to_frame_p95_ms": pct(call_to_frame, 0.95)}


# --- 2. fan-out -----------------------------------------------------------------------------------
def serve_hub(port: int, seconds: float) -> None:
    """The hub process: publishes the MIX for `seconds`, then serves /stats until killed."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from character_bridge import web
    from character_bridge.hub import Hub
    from character_bridge.protocol import EMOTIONS, ExpressionEvent, GazeEvent, ParamEvent, StateEvent

    hub = Hub()
    published: dict[str, int] = {k: 0 for k, _ in MIX}
    started = asyncio.Event()

    def make(kind: str, i: int) -> Any:
        if kind == "param":
            return ParamEvent(name="mouth_open", value=(i % 10) / 10)
        if kind == "gaze":
            return GazeEvent(x=((i % 20) - 10) / 10, y=0.0)
        if kind == "expression":
            return ExpressionEvent(emotion=EMOTIONS[i % len(EMOTIONS)])  # type: ignore[arg-type]
        return StateEvent(state=("idle", "listening", "thinking", "speaking")[i % 4])

    async def publisher() -> None:
        await started.wait()
        schedule = sorted((j / rate, kind) for kind, rate in MIX for j in range(rate))
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for second in range(int(seconds)):
            for offset, kind in schedule:
                await asyncio.sleep(max(0.0, t0 + second + offset - loop.time()))
                hub.publish(make(kind, published[kind]))
                published[kind] += 1

    async def stats(_: Any) -> JSONResponse:
        return JSONResponse({"published": published, "hub": hub.stats(), "done": sum(published.values())})

    async def start(_: Any) -> JSONResponse:
        started.set()
        return JSONResponse({"ok": True})

    @contextlib.asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        task = asyncio.create_task(publisher())
        yield
        task.cancel()

    app = Starlette(routes=[*web.routes(hub), Route("/stats", stats), Route("/start", start, methods=["POST"])],
                    lifespan=lifespan)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def proc_sample(pid: int) -> tuple[float, int]:
    """(CPU seconds used, RSS bytes) of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    rss = next(int(line.split()[1]) * 1024 for line in Path(f"/proc/{pid}/status").read_text().splitlines()
               if line.startswith("VmRSS:"))
    return cpu, rss


async def fanout(renderers: int, seconds: float) -> dict[str, Any]:
    import httpx
    import websockets

    from tests.support import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve-hub", str(port), "--seconds", str(seconds)],
                            stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(200):
                try:
                    await http.get(f"{base}/stats")
                    break
                except httpx.HTTPError:
                    await asyncio.sleep(0.1)
            counts = [dict.fromkeys(("param", "gaze", "expression", "state"), 0) for _ in range(renderers)]
            delays: list[float] = []
            stop = asyncio.Event()

            async def renderer(i: int, ready: asyncio.Event) -> None:
                async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as ws:
                    ready.set()
                    while not stop.is_set():
                        try:
                            msg = await asyncio.wait_for(ws.recv(), 0.5)
                        except TimeoutError:
                            continue
                        now = time.time() * 1000
                        for line in str(msg).splitlines():
                            ev = json.loads(line)
                            counts[i][ev["kind"]] += 1
                            if i % 5 == 0:  # sample the delivery delay on every fifth renderer
                                delays.append(now - ev["ts"])

            slow_got: dict[str, int] = {}

            async def slow_renderer(ready: asyncio.Event) -> None:
                """Reads once a second: its mouth frames must be coalesced, its expressions kept."""
                sock = socket.socket()
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)  # a renderer on a poor link
                sock.connect(("127.0.0.1", port))
                async with websockets.connect(f"ws://127.0.0.1:{port}/ws", sock=sock, max_queue=1,
                                              compression=None) as ws:
                    await ws.send(json.dumps({"type": "hello", "name": "slow"}))
                    ready.set()
                    while not stop.is_set():
                        await asyncio.sleep(1.0)
                        with contextlib.suppress(TimeoutError):
                            while True:
                                msg = await asyncio.wait_for(ws.recv(), 0.01)
                                for line in str(msg).splitlines():
                                    kind = json.loads(line)["kind"]
                                    slow_got[kind] = slow_got.get(kind, 0) + 1

            readies = [asyncio.Event() for _ in range(renderers + 1)]
            tasks = [asyncio.create_task(renderer(i, r)) for i, r in enumerate(readies[:-1])]
            tasks.append(asyncio.create_task(slow_renderer(readies[-1])))
            await asyncio.gather(*(r.wait() for r in readies))
            samples = [proc_sample(proc.pid)]
            await http.post(f"{base}/start")
            t0 = time.time()
            while time.time() - t0 < seconds + 1:
                await asyncio.sleep(1.0)
                samples.append(proc_sample(proc.pid))
            await asyncio.sleep(1.0)
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            stats = (await http.get(f"{base}/stats")).json()
    finally:
        proc.terminate()
        proc.wait(10)
    pub = stats["published"]
    subs = [s for s in stats["hub"]["subscribers"] if s["kind"] == "websocket" and s["name"] != "slow"]
    slow = next((s for s in stats["hub"]["subscribers"] if s["name"] == "slow"), {"coalesced": 0, "sent": 0})
    reliable_missing = sum(max(0, pub[k] - c[k]) for c in counts for k in ("expression", "state"))
    warm = samples[min(5, len(samples) - 1)]
    cpu = (samples[-1][0] - samples[0][0]) / max(1e-9, seconds)
    return {
        "renderers": renderers, "seconds": seconds, "events_per_s": sum(r for _, r in MIX),
        "published": pub, "reliable_dropped": reliable_missing,
        "mouth_frames_delivered": sum(c["param"] + c["gaze"] for c in counts),
        "mouth_frames_coalesced": sum(s["coalesced"] for s in subs),
        "slow_renderer": {"received": slow_got, "coalesced": slow["coalesced"],
                          "reliable_dropped": sum(max(0, pub[k] - slow_got.get(k, 0)) for k in ("expression", "state"))},
        "delivery_p50_ms": pct(delays, 0.5), "delivery_p95_ms": pct(delays, 0.95),
        "hub_cpu_percent_of_core": 100 * cpu,
        "hub_rss_mb_start": warm[1] / 2**20, "hub_rss_mb_end": samples[-1][1] / 2**20,
        "hub_rss_growth_mb": (samples[-1][1] - warm[1]) / 2**20,
    }


# --- 3. lip-sync cost ------------------------------------------------------------------------------
def lipsync_cost() -> dict[str, Any]:
    import numpy as np
    import soundfile as sf
    import soxr

    from character_bridge import lipsync

    text = ("The quick brown fox jumps over the lazy dog while the avatar keeps talking about "
            "memory, persona and research, and its mouth follows every syllable it says.")
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "s.wav"
        subprocess.run(["espeak-ng", "-w", str(wav), text], check=True)
        audio, rate = sf.read(wav, dtype="float32")
    audio16 = soxr.resample(audio, rate, 16000).astype(np.float32)
    seconds = len(audio16) / 16000
    reps = 50
    t = time.perf_counter()
    for _ in range(reps):
        lipsync.envelope(audio16, 16000)
    envelope_ms = (time.perf_counter() - t) * 1000 / reps
    pcm = (audio16 * 32767).astype("<i2").tobytes()
    t = time.perf_counter()
    for _ in range(reps):
        env = lipsync.MouthEnvelope(16000)
        for i in range(0, len(pcm), 640):  # 20 ms chunks as a TTS stream delivers them
            env.push(pcm[i:i + 640])
        env.flush()
    stream_ms = (time.perf_counter() - t) * 1000 / reps
    t = time.perf_counter()
    lipsync.visemes(text, int(seconds * 1000))
    visemes_ms = (time.perf_counter() - t) * 1000
    return {"audio_s": seconds, "envelope_ms_per_audio_s": envelope_ms / seconds,
            "streaming_20ms_chunks_ms_per_audio_s": stream_ms / seconds, "visemes_ms_per_utterance": visemes_ms}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0, help="fan-out duration (the issue's figure: 60)")
    ap.add_argument("--renderers", type=int, default=50)
    ap.add_argument("--events", type=int, default=100, help="expressions sent to the browser")
    ap.add_argument("--screenshots", action="store_true", help="save bench/out/character_<emotion>.png")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON")
    ap.add_argument("--serve-hub", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_hub:
        serve_hub(args.serve_hub, args.seconds)
        return
    results = {"lipsync": lipsync_cost(),
               "browser": asyncio.run(browser_latency(args.events, args.screenshots)),
               "fanout": asyncio.run(fanout(args.renderers, args.seconds))}
    b, f, ls = results["browser"], results["fanout"], results["lipsync"]
    rows = [
        ("event → rendered in Chromium (hub ts → rAF)", f"p50 {b['event_to_frame_p50_ms']:.1f} / p95 {b['event_to_frame_p95_ms']:.1f} ms",
         "p95 ≤ 50 ms"),
        ("tool call → rendered (MCP HTTP + hub + rAF)", f"p50 {b['call_to_frame_p50_ms']:.1f} / p95 {b['call_to_frame_p95_ms']:.1f} ms", ""),
        (f"fan-out {f['renderers']} renderers × {f['events_per_s']} ev/s × {f['seconds']:.0f} s",
         f"{f['reliable_dropped']} expression/state dropped", "0"),
        ("  mouth/gaze frames delivered / coalesced", f"{f['mouth_frames_delivered']} / {f['mouth_frames_coalesced']}", ""),
        ("  a renderer reading once a second", f"{f['slow_renderer']['reliable_dropped']} expression/state dropped, "
                                                 f"{f['slow_renderer']['coalesced']} frames coalesced", ""),
        ("  delivery (hub ts → renderer)", f"p50 {f['delivery_p50_ms']:.1f} / p95 {f['delivery_p95_ms']:.1f} ms", "p95 ≤ 20 ms"),
        ("  hub CPU", f"{f['hub_cpu_percent_of_core']:.1f} % of one core", ""),
        ("  hub RSS (after 5 s → end)", f"{f['hub_rss_mb_start']:.1f} → {f['hub_rss_mb_end']:.1f} MB "
                                          f"({f['hub_rss_growth_mb']:+.2f})", "no growth"),
        ("lip-sync envelope, 16 kHz", f"{ls['envelope_ms_per_audio_s']:.3f} ms per s of audio", "≤ 2 ms/s"),
        ("  streamed in 20 ms chunks", f"{ls['streaming_20ms_chunks_ms_per_audio_s']:.3f} ms per s of audio", ""),
        ("  visemes (espeak-ng) per utterance", f"{ls['visemes_ms_per_utterance']:.1f} ms ({ls['audio_s']:.1f} s speech)", ""),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'figure':<{width}}  {'measured':<36}  target")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:<36}  {target}")
    print(f"(machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f})")
    save(results, args.json)


if __name__ == "__main__":
    main()
