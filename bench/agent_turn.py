"""Hook overhead of one voice turn: speaker id of ~3 s audio + recall + profile, over MCP stdio.

    .venv/bin/python bench/agent_turn.py [--memories 10000] [--turns 60] [--json OUT]

The memory server holds `--memories` real dialogue turns (LoCoMo dev) over 100 users; the
persona server knows 3 FSDD speakers (3 clips each) with a few profile facts. Each turn is a
~3 s utterance of one of them (never an enrolment clip) and a LoCoMo question. The agent's shape
is `TurnHooks.prepare()` itself: identification, memory_search and profile_get in parallel
(recall speculatively for the previous speaker, re-run when the speaker changed; the speaker
changes every 4 turns). The original's shape is sequential: identify, then search, then profile.
Both run on the same servers, interleaved turn by turn, with budgets high enough that nothing
is dropped: this measures the work, not the budget. A third row is the voice turn as the agent
runs it: identification starts when speech stops, recall when the final transcript arrives
(0.25 s later), and the turn ends after 0.5 s of silence; it shows what is left to wait for then.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from livekit import rtc
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.audio import to_wav16k, wav_base64  # noqa: E402
from agent.config import McpServerConfig, TurnConfig  # noqa: E402
from agent.mcp_sessions import McpHub  # noqa: E402
from agent.pipeline import SERVER_DEFAULTS  # noqa: E402
from agent.turn import TurnHooks  # noqa: E402
from bench.figures import save  # noqa: E402
from bench.memory_latency import USERS, corpus, pct  # noqa: E402
from tests.datasets import RATE, fsdd  # noqa: E402
from tests.support import DATASETS, server_env  # noqa: E402

SPEAKERS = ("george", "jackson", "lucas")
PER_SPEAKER = 4  # consecutive turns of one speaker
TRANSCRIPT_S, SILENCE_S = 0.25, 0.5  # speech stop → final transcript; speech stop → end of turn
STREAM_S = 1.5  # identification starts after this much speech (TurnConfig.stream_identify_s)


def wav16k(samples: np.ndarray) -> bytes:
    """What the agent sends for a turn: the frames it heard, as 16 kHz WAV (agent.audio)."""
    pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16)
    return to_wav16k([rtc.AudioFrame(pcm.tobytes(), RATE, 1, len(pcm))])


def facts(name: str) -> list[dict[str, Any]]:
    return [{"op": "set", "field": "identity.name", "value": name.title()},
            {"op": "set", "field": "identity.location", "value": "Lisbon"},
            {"op": "add", "field": "preferences", "value": f"{name.title()} likes sailing and jazz"}]


async def setup(hub: McpHub, data: Path, n: int) -> tuple[dict[str, str], dict[str, list[tuple[bytes, bytes, float]]], list[str]]:
    utts = fsdd(6, DATASETS / "fsdd-dev")  # six digits: ~3 s of audio
    ids: dict[str, str] = {}
    probes: dict[str, list[tuple[bytes, bytes, float]]] = {}  # (whole turn, its first STREAM_S, seconds)
    for name in SPEAKERS:
        user = await hub.call_data("user_create", {"name": name.title()})
        ids[name] = user["user_id"]
        clips = [wav_base64(wav16k(u)) for u in utts[name][:3]]
        await hub.call_data("speaker_enroll", {"user_id": ids[name], "audio": clips}, time_limit=300)
        await hub.call_data("profile_update", {"user_id": ids[name], "patches": facts(name)})
        probes[name] = [(wav16k(u), wav16k(u[: int(STREAM_S * RATE)]), len(u) / RATE) for u in utts[name][3:]]
    turns, questions = corpus(data)
    users = [*ids.values(), *(f"user-{i}" for i in range(USERS - len(ids)))]
    started = time.perf_counter()
    for start in range(0, n, 1000):
        items = [{"content": f"{turns[(i * 7919) % len(turns)]} (#{i})", "user_id": users[i % len(users)],
                  "session_id": f"s{i // 2000}", "infer": False} for i in range(start, min(n, start + 1000))]
        await hub.call_data("memory_add_batch", {"items": items}, time_limit=600)
    print(f"filled {n:,} memories in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return ids, probes, questions


async def sequential(hooks: TurnHooks, text: str, wav: bytes) -> float:
    """The original's shape: identify, then search, then profile."""
    started = time.perf_counter()
    speaker = await hooks.identify(wav)
    user = speaker.user_id if speaker else None
    await hooks.hub.call_data("memory_search", {"query": text, "user_id": user, "limit": hooks.cfg.memory_limit})
    if user:
        await hooks.hub.call_data("profile_get", {"user_id": user})
    return (time.perf_counter() - started) * 1000


async def alone(hooks: TurnHooks, text: str, wav: bytes, user: str) -> dict[str, float]:
    """Each call by itself: the floor the parallel shape is made of."""
    out = {}
    for name, call in (("identify", hooks.identify(wav)),
                       ("search", hooks.hub.call_data("memory_search", {"query": text, "user_id": user,
                                                                        "limit": hooks.cfg.memory_limit})),
                       ("profile", hooks.hub.call_data("profile_get", {"user_id": user}))):
        started = time.perf_counter()
        await call
        out[name] = (time.perf_counter() - started) * 1000
    return out


async def voice_turn(hooks: TurnHooks, text: str, wav: bytes) -> float:
    """What a spoken turn still waits for at its end, when the work started as speech stopped."""
    hooks.speakers.hear("speech_stopped", wav)
    await asyncio.sleep(TRANSCRIPT_S)
    hooks.prefetch(text)
    await asyncio.sleep(SILENCE_S - TRANSCRIPT_S)
    return (await hooks.prepare(text, wav)).total_ms


async def streaming_turn(hooks: TurnHooks, text: str, wav: bytes, head: bytes, seconds: float) -> float:
    """The voice turn with streaming identification: it starts on the first 1.5 s of speech while
    the person goes on talking; then speech stops, the transcript arrives, the turn ends."""
    hooks.speakers.hear("first_seconds", head)
    await asyncio.sleep(max(0.0, seconds - STREAM_S))
    hooks.speakers.hear("speech_stopped", wav)  # speech stopped: the streamed identification stands
    await asyncio.sleep(TRANSCRIPT_S)
    hooks.prefetch(text)
    await asyncio.sleep(SILENCE_S - TRANSCRIPT_S)
    return (await hooks.prepare(text, wav)).total_ms


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as home:
        hub = McpHub([McpServerConfig(name="memory", timeout=120), McpServerConfig(name="persona", timeout=120)],
                     {**SERVER_DEFAULTS, **server_env(Path(home))})  # as the agent starts them
        assert not await hub.start(), "servers did not start"
        try:
            ids, probes, questions = await setup(hub, Path(args.data), args.memories)
            cfg = TurnConfig(recall_budget_ms=60_000, identify_budget_ms=60_000, adapt_voiceprints=False)
            hooks, voice = TurnHooks(hub, cfg, "bench"), TurnHooks(hub, cfg, "bench-voice")
            stream = TurnHooks(hub, cfg, "bench-stream")
            for i in range(6):  # warm both servers' models and caches
                await hooks.prepare(questions[i], probes[SPEAKERS[i % 3]][0][0])
            rows: dict[str, list[float]] = {"same": [], "changed": [], "sequential": [], "voice": [],
                                            "stream_same": [], "stream_changed": [],
                                            "identify": [], "search": [], "profile": []}
            correct = 0
            for i in range(args.turns):
                name = SPEAKERS[(i // PER_SPEAKER) % len(SPEAKERS)]
                wav, head, seconds = probes[name][(i // len(SPEAKERS)) % len(probes[name])]
                text = questions[(i * 31) % len(questions)]
                shapes = ["parallel", "sequential"] if i % 2 == 0 else ["sequential", "parallel"]
                for shape in shapes:
                    if shape == "parallel":
                        before = hooks.user_id
                        prep = await hooks.prepare(text, wav)
                        rows["same" if before == hooks.user_id else "changed"].append(prep.total_ms)
                        correct += hooks.user_id == ids[name]
                    else:
                        rows["sequential"].append(await sequential(hooks, text, wav))
                rows["voice"].append(await voice_turn(voice, text, wav))
                before = stream.user_id
                ms = await streaming_turn(stream, text, wav, head, seconds)
                rows["stream_same" if before == stream.user_id else "stream_changed"].append(ms)
                for part, ms in (await alone(hooks, text, wav, ids[name])).items():
                    rows[part].append(ms)
            parallel = rows["same"] + rows["changed"]
            return {
                "p50_ms": round(statistics.median(parallel), 1), "p95_ms": round(pct(parallel, 0.95), 1),
                "sequential_p50_ms": round(statistics.median(rows["sequential"]), 1),
                "sequential_p95_ms": round(pct(rows["sequential"], 0.95), 1),
                "same_speaker_p95_ms": round(pct(rows["same"], 0.95), 1) if rows["same"] else None,
                "speaker_changed_p95_ms": round(pct(rows["changed"], 0.95), 1) if rows["changed"] else None,
                "voice_turn_p50_ms": round(statistics.median(rows["voice"]), 1),
                "voice_turn_p95_ms": round(pct(rows["voice"], 0.95), 1),
                "streaming_same_p95_ms": round(pct(rows["stream_same"], 0.95), 1) if rows["stream_same"] else None,
                "streaming_changed_p95_ms": round(pct(rows["stream_changed"], 0.95), 1) if rows["stream_changed"] else None,
                "identified": f"{correct}/{len(parallel)}", "memories": args.memories, "turns": args.turns,
                "rows": {k: [round(v, 2) for v in vs] for k, vs in rows.items()},
            }
        finally:
            await hub.aclose()


def show(result: dict[str, Any]) -> None:
    table = Table(title=f"Hook overhead per turn ({result['memories']:,} memories, MCP stdio, "
                        f"{result['turns']} turns, speaker identified {result['identified']})")
    for col in ("shape", "turns", "p50 ms", "p95 ms", "mean ms"):
        table.add_column(col, justify="right" if col != "shape" else "left")
    rows = result["rows"]
    for label, values in (("parallel: all turns", rows["same"] + rows["changed"]),
                          ("  same speaker as before", rows["same"]),
                          ("  speaker changed", rows["changed"]),
                          ("sequential (original)", rows["sequential"]),
                          ("voice turn: left after 0.5 s of silence", rows["voice"]),
                          ("streaming id (first 1.5 s): same speaker", rows["stream_same"]),
                          ("streaming id (first 1.5 s): speaker changed", rows["stream_changed"]),
                          ("alone: speaker_identify (~3 s)", rows["identify"]),
                          ("alone: memory_search", rows["search"]),
                          ("alone: profile_get", rows["profile"])):
        if values:
            table.add_row(label, str(len(values)), f"{statistics.median(values):.1f}", f"{pct(values, 0.95):.1f}",
                          f"{statistics.mean(values):.1f}")
    Console().print(table)
    print(f"p95: parallel {result['p95_ms']} ms vs sequential {result['sequential_p95_ms']} ms "
          f"({result['sequential_p95_ms'] / result['p95_ms']:.2f}x); target p95 <= 60 ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--memories", type=int, default=10_000)
    parser.add_argument("--turns", type=int, default=60)
    parser.add_argument("--data", default=str(DATASETS / "locomo-dev"))
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    show(result)
    save({k: v for k, v in result.items() if k != "rows"}, args.json)  # the figures, not every sample


if __name__ == "__main__":
    main()
