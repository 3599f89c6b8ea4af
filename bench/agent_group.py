"""Several people, one avatar: attribution, addressing, and what presence and visibility add to a turn.

    .venv/bin/python bench/agent_group.py [--turns 2000] [--searches 100] [--checks 40]

1. A recorded conversation of real FSDD voices (george, jackson, lucas enrolled; nicolas never),
   14 utterances, replayed through `alphaavatar agent replay` with the fake STT reading the words
   of each clip it is sent and a fake LLM: attribution accuracy per utterance, addressing
   precision and recall.
2. A conversation of turns that each hold two voices back to back (no pause the VAD cuts at),
   replayed the same way: attribution accuracy per part, and how many turns were split.
3. The added latency per turn, side by side: the agent's own work for a group turn (presence
   update, audience, addressing by cues, the history filter over 40 messages) against nothing;
   and `memory_search` with `present` against the same search without it, on one memory server
   over stdio (when the server takes `present`), alternating, so load affects both alike.
4. The voice-change check (`agent.split`) on one persona server over stdio: on a long single-voice
   turn, the turn's own identification from speech stop and the wait the two edge identifications add
   after it (the agent also lets the turn's transcript and recall go first); on a two-voice turn, all
   of it with `speaker_segment`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from livekit.agents import llm  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from agent.addressing import Addressing  # noqa: E402
from agent.audio import wav_base64  # noqa: E402
from agent.config import GroupConfig, McpServerConfig, TurnConfig  # noqa: E402
from agent.mcp_sessions import McpHub  # noqa: E402
from agent.presence import Presence  # noqa: E402
from agent.speaker import Speaker  # noqa: E402
from agent.speaking import SpeakerTracker  # noqa: E402
from agent.split import VoiceChange  # noqa: E402
from tests.conversation import ENROLLED, Script, Turn, enroll, line_at, recording, replay, stage, turn_wav  # noqa: E402
from tests.datasets import fsdd  # noqa: E402
from tests.fakes.openai_server import FakeOpenAI, Reply  # noqa: E402
from tests.support import server_env  # noqa: E402

CONVERSATION: list[Turn] = [
    ("george", "Alpha, good morning.", True),
    ("lucas", "Morning George, did you sleep well?", False),
    ("george", "Not really, Lucas.", False),
    ("george", "Alpha, what is on my calendar today?", True),
    ("george", "And when is the first meeting?", True),
    ("jackson", "Hi Lucas, are you coming to lunch?", False),
    ("lucas", "Yes Jackson, at noon.", False),
    ("jackson", "Alpha, book a table for three.", True),
    ("nicolas", "Alpha, where is the station?", True),
    ("lucas", "Alpha, remind me to call my mother.", True),
    ("nicolas", "Is this seat free, George?", False),
    ("george", "Sure, Jackson can move.", False),
    ("jackson", "Alpha, play some music.", True),
    ("lucas", "Alpha, what time is it?", True),
]


TWO_VOICES: list[Turn] = [  # each pair is one turn: the second speaker starts 0.15 s after the first stops
    ("george", "Lucas, did you see the game?", False), ("lucas", "Alpha, who won last night?", True),
    ("jackson", "I missed it, George.", False), ("george", "Alpha, what is the score?", True),
    ("lucas", "Jackson, come over later.", False), ("jackson", "Alpha, remind me at six.", True),
    ("george", "Alpha, play some jazz.", True), ("nicolas", "Is that seat taken?", False),
]
JOINED = frozenset(range(1, len(TWO_VOICES), 2))


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def conversation(turns: list[Turn], joined: frozenset[int] = frozenset()
                 ) -> tuple[float, float, float, int, list[str]]:
    """(attribution accuracy, addressing precision, recall, utterances heard as their own line) of one
    replayed conversation; an utterance is attributed right when its line (the nearest start) names
    its speaker, or for the unknown voice, nobody enrolled. Also: what went wrong, one line each."""
    script = Script()
    with tempfile.TemporaryDirectory() as home, FakeOpenAI(lambda body: Reply(content="Sure."),
                                                           transcriber=script.transcribe) as fake:
        at = asyncio.run(stage(Path(home), fake.base_url))
        wav = Path(home) / "conversation.wav"
        starts = recording(turns, at.utts, {k: 3 for k in at.utts}, wav, joined=joined, script=script)
        lines = replay(at.config, wav, at.env)
    right = tp = fp = fn = 0
    wrong = []
    for (speaker, text, to_avatar), start in zip(turns, starts, strict=True):
        line = line_at(lines, start)
        who = line["speaker"]["user_id"] if line else "missing"
        ok = who == speaker if speaker in ENROLLED else who != "missing" and who not in ENROLLED
        right += ok
        said = bool(line and line["addressed"])
        if not ok or said != to_avatar:
            wrong.append(f"{start:.1f} s {speaker} {text!r} (to the avatar: {to_avatar}) -> {line}")
        tp += said and to_avatar
        fp += said and not to_avatar
        fn += to_avatar and not said
    wrong += [f"extra line: {ln}" for ln in lines if not any(line_at([ln], s) for s in starts)]
    return right / len(turns), tp / max(1, tp + fp), tp / max(1, tp + fn), len(lines), wrong


async def voice_change_checks(n: int) -> tuple[list[float], list[float], list[float], int]:
    """What the voice-change check costs, as the agent runs it when speech stops: on long single-voice
    turns (one speaker's two utterances), the turn's own identification (ms) and the wait the edge checks
    add after it (ms); on two-voice turns, all of it with `speaker_segment` (ms), and how many of those it
    split into their two speakers' parts."""
    with tempfile.TemporaryDirectory() as home:
        env = server_env(Path(home))
        utts = fsdd(digits=6)
        await enroll(env, utts)
        hub = McpHub([McpServerConfig(name="persona", timeout=120)], env)
        await hub.start()
        cfg = TurnConfig()
        speakers = SpeakerTracker(hub, cfg)
        change = VoiceChange(hub, cfg, speakers)
        try:
            await hub.call_data("speaker_identify", {"audio": wav_base64(turn_wav(utts["george"][3])), "adapt": False})
            ident, added, double, split = [], [], [], 0
            for i in range(n):
                people = sorted(ENROLLED)
                a, b = people[i % 3], people[(i + 1) % 3]
                for audio, two in ((turn_wav(utts[a][3 + i % 10], utts[a][4 + i % 10]), False),
                                   (turn_wav(utts[a][3 + i % 10], utts[b][4 + i % 10]), True)):
                    started = time.perf_counter()
                    tentative = change.listen(audio)
                    speakers.hear("speech_stopped", audio, tentative=tentative)
                    turn = speakers.pending()
                    assert tentative and turn is not None
                    await turn
                    identified = time.perf_counter()
                    parts = await change.parts(audio) if await change.differs(30) else None
                    speakers.hear("speech_started")  # the next turn
                    if two:
                        double.append((time.perf_counter() - started) * 1000)
                        split += parts is not None and [q.speaker and q.speaker.user_id for q in parts] == [a, b]
                    else:
                        ident.append((identified - started) * 1000)
                        added.append((time.perf_counter() - identified) * 1000)
            return ident, added, double, split
        finally:
            await hub.aclose()


async def group_turn_work(turns: int) -> tuple[list[float], list[float]]:
    """The agent's own per-turn group work (µs), against an empty loop of the same shape."""
    people = [Speaker(u, u.title(), "known") for u in ("george", "jackson", "lucas")]
    ears = Addressing("Alpha", GroupConfig(llm_judge=False))
    history = [llm.ChatMessage(role="user", content=[f"line {i}"]) for i in range(40)]
    heard_by = {m.id: frozenset({"george", "lucas"} if i % 2 else {"george"}) for i, m in enumerate(history)}
    presence = Presence()
    work, base = [], []
    for i in range(turns):
        who = people[i % 3]
        started = time.perf_counter()
        base.append((time.perf_counter() - started) * 1e6)
        started = time.perf_counter()
        presence.heard(who)
        audience = frozenset(presence.audience(who.user_id))
        me = next(p for p in presence.people() if p.user_id == who.user_id)
        await ears.decide("Lucas, how was your day?", me, presence.people())
        [m for m in history if m.id not in heard_by or audience <= heard_by[m.id]]
        work.append((time.perf_counter() - started) * 1e6)
    return work, base


async def searches(n: int) -> tuple[list[float], list[float]] | None:
    """memory_search (ms) with and without `present`, alternating; None when the server has no filter."""
    with tempfile.TemporaryDirectory() as home:
        hub = McpHub([McpServerConfig(name="memory", timeout=120)], server_env(Path(home)))
        await hub.start()
        try:
            tool = next(t.tool for t in hub.tools() if t.tool.name == "memory_search")
            if "present" not in (tool.input_schema.get("properties") or {}):
                return None
            for i in range(200):
                await hub.call_data("memory_add", {"content": f"george note {i}: likes tea number {i}",
                                                   "user_id": "george", "infer": False,
                                                   "present": ["george"] if i % 2 else ["george", "lucas"]})
            plain, filtered = [], []
            for i in range(n):
                for args, out in (({}, plain), ({"present": ["george", "lucas"]}, filtered)):
                    started = time.perf_counter()
                    await hub.call_data("memory_search", {"query": f"tea {i}", "user_id": "george", **args})
                    out.append((time.perf_counter() - started) * 1000)
            return plain, filtered
        finally:
            await hub.aclose()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--turns", type=int, default=2000)
    ap.add_argument("--searches", type=int, default=100)
    ap.add_argument("--checks", type=int, default=40)
    ap.add_argument("--no-replay", action="store_true")
    a = ap.parse_args()
    console = Console()
    if not a.no_replay:
        t = Table(title="replayed conversations (3 enrolled voices + 1 unknown)")
        for col in ("conversation", "utterances / lines", "attribution accuracy", "addressing precision",
                    "addressing recall"):
            t.add_column(col)
        acc, precision, recall, n, wrong = conversation(CONVERSATION)
        t.add_row("one voice per turn", f"{len(CONVERSATION)} / {n}", f"{acc:.1%}", f"{precision:.1%}", f"{recall:.1%}")
        acc, precision, recall, n, wrong_parts = conversation(TWO_VOICES, JOINED)
        t.add_row(f"two voices per turn ({len(TWO_VOICES) // 2} turns), per part", f"{len(TWO_VOICES)} / {n}",
                  f"{acc:.1%}", f"{precision:.1%}", f"{recall:.1%}")
        console.print(t)
        for miss in wrong + wrong_parts:
            print("  wrong:", miss)
    work, base = asyncio.run(group_turn_work(a.turns))
    t = Table(title=f"added latency per turn ({a.turns} turns)")
    for col in ("what", "p50", "p95", "max"):
        t.add_column(col)
    t.add_row("empty loop (µs)", *(f"{v:.1f}" for v in (statistics.median(base), pct(base, .95), max(base))))
    t.add_row("presence + addressing + history filter (µs)",
              *(f"{v:.1f}" for v in (statistics.median(work), pct(work, .95), max(work))))
    found = asyncio.run(searches(a.searches))
    if found is None:
        t.add_row("memory_search with present", "server has no `present` filter", "", "")
    else:
        plain, filtered = found
        t.add_row("memory_search without present (ms)", *(f"{v:.1f}" for v in (statistics.median(plain), pct(plain, .95), max(plain))))
        t.add_row("memory_search with present (ms)", *(f"{v:.1f}" for v in (statistics.median(filtered), pct(filtered, .95), max(filtered))))
        t.add_row("ratio p50 / p95", f"{statistics.median(filtered) / statistics.median(plain):.2f}",
                  f"{pct(filtered, .95) / pct(plain, .95):.2f}", "")
    ident, added, double, split = asyncio.run(voice_change_checks(a.checks))
    t.add_row("long single-voice turn: its own identification, from speech stop (ms)",
              *(f"{v:.1f}" for v in (statistics.median(ident), pct(ident, .95), max(ident))))
    t.add_row("long single-voice turn: edge checks after it, added (ms; in the end-of-turn silence)",
              *(f"{v:.1f}" for v in (statistics.median(added), pct(added, .95), max(added))))
    t.add_row(f"two-voice turn: identification + edge checks + speaker_segment (ms; split {split}/{len(double)})",
              *(f"{v:.1f}" for v in (statistics.median(double), pct(double, .95), max(double))))
    console.print(t)


if __name__ == "__main__":
    main()
