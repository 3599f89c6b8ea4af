"""Turns that hold two voices, through `alphaavatar agent replay` on real FSDD voices, with the
split on by default.

george, jackson and lucas are enrolled by voice. lucas asks george something; george answers and
jackson, without a pause the VAD would cut at, asks the avatar: one turn, two voices. Later lucas
and george each ask the avatar something, back to back: both parts are answered, one reply each.
The fake STT reads the words of each recorded clip the audio it is sent holds, so each part's words
come from STT on that part's audio alone.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from agent.audio import ID_RATE
from agent.config import McpServerConfig, TurnConfig
from agent.contracts import Segments
from agent.mcp_sessions import McpHub
from agent.speaking import SpeakerTracker
from agent.split import VoiceChange, parts_of
from tests.conversation import Script, Turn, line_at, own_memories, recording, replay, stage, turn_wav
from tests.datasets import fsdd, needs_fsdd, wav_b64
from tests.fakes.openai_server import FakeOpenAI
from tests.support import ok, server_env, stdio_session

pytestmark = needs_fsdd
# The replayed tests are real-time audio, timing-sensitive on a loaded machine: they run in -m slow;
# where a turn is cut (parts_of) is checked in the default run, at the end.

TURNS: list[Turn] = [("lucas", "Hey George, are you free tonight?", False),
                     ("george", "Yes Lucas, I am free after six.", False),
                     ("jackson", "Alpha, book a table for the three of us.", True),
                     ("lucas", "Alpha, who won the game last night?", True),
                     ("george", "Alpha, and what is the weather tomorrow?", True)]
JOINED = frozenset({2, 4})  # jackson speaks right after george, george right after lucas: one VAD turn each


@pytest.fixture(scope="module")
async def replayed(fake: FakeOpenAI, script: Script, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("split")
    at = await stage(home, fake.base_url)
    wav = home / "two-voices.wav"
    starts = recording(TURNS, at.utts, {k: 3 for k in at.utts}, wav, joined=JOINED, script=script)
    lines = replay(at.config, wav, at.env)
    return {"starts": starts, "lines": lines, "memories": await own_memories(at.env),
            "llm": [b for b in fake.requests if "messages" in b]}


@pytest.mark.slow
async def test_a_turn_with_two_voices_is_split_and_each_part_attributed(replayed: dict[str, Any]) -> None:
    lines = replayed["lines"]
    assert len(lines) == len(TURNS), lines  # one line per voice, though the VAD heard two turns
    for (speaker, text, to_avatar), start in zip(TURNS, replayed["starts"], strict=True):
        line = line_at(lines, start)
        assert line is not None, f"no line for the utterance at {start:.1f} s: {lines}"
        assert line["speaker"]["user_id"] == speaker and line["speaker"]["decision"] == "known", line
        assert line["text"] == text, line  # STT on the part's audio: its own words only
        assert line["addressed"] is to_avatar and (line["reply"] is not None) is to_avatar, line
        assert speaker in line["present"]
    george, jackson = lines[1], lines[2]
    assert george["end"] <= jackson["start"] + 0.5 and set(jackson["present"]) >= {"george", "jackson", "lucas"}


@pytest.mark.slow
async def test_each_part_goes_to_its_own_speakers_memory(replayed: dict[str, Any]) -> None:
    memories = replayed["memories"]
    assert "free after six" in memories["george"] and "book a table" not in memories["george"]
    assert "book a table" in memories["jackson"] and "free after six" not in memories["jackson"]
    assert "free tonight" in memories["lucas"] and "who won" in memories["lucas"]
    assert not any(t in memories["lucas"] for t in ("free after six", "book a table", "weather tomorrow"))
    assert "weather tomorrow" in memories["george"] and "who won" not in memories["george"]


def last_said(messages: list[dict[str, Any]]) -> str:
    return json.dumps([m for m in messages if m["role"] == "user"][-1])


@pytest.mark.slow
async def test_the_llm_is_asked_with_the_answered_part_only(replayed: dict[str, Any]) -> None:
    asked = [b["messages"] for b in replayed["llm"] if "book a table" in json.dumps(b["messages"])]
    assert asked
    assert "book a table" in last_said(asked[0]) and "free after six" not in last_said(asked[0])


@pytest.mark.slow
async def test_both_parts_spoken_to_the_avatar_get_a_reply_each_in_order(replayed: dict[str, Any]) -> None:
    lucas = [b["messages"] for b in replayed["llm"] if "who won" in last_said(b["messages"])]
    george = [b["messages"] for b in replayed["llm"] if "weather tomorrow" in last_said(b["messages"])]
    assert len(lucas) == 1 and len(george) == 1, [last_said(b["messages"]) for b in replayed["llm"]]
    assert "weather tomorrow" not in json.dumps(lucas[0])  # one question per request: its asker's
    history = [m for m in george[0] if m["role"] in ("user", "assistant")]
    assert "who won" in json.dumps(history[-3]) and history[-2]["role"] == "assistant"  # lucas was answered first


def test_a_stretch_too_short_to_be_a_part_joins_its_neighbour() -> None:
    def speaker(tag: str, user: str | None) -> dict[str, Any]:
        return {"speaker": tag, "user_id": user, "decision": "known" if user else "unknown", "unknown_below": 0.7}

    found = Segments.model_validate({
        "segments": [{"start": 0.3, "end": 0.6, "speaker": "S3"}, {"start": 0.7, "end": 4.3, "speaker": "S1"},
                     {"start": 4.4, "end": 7.0, "speaker": "S2"}, {"start": 7.1, "end": 7.5, "speaker": "S3"}],
        "speakers": [speaker("S1", "george"), speaker("S2", "jackson"), speaker("S3", None)]})
    samples = np.zeros(8 * ID_RATE, dtype=np.int16)
    for start, end in ((0.3, 4.3), (4.4, 7.5)):
        samples[int(start * ID_RATE): int(end * ID_RATE)] = 5000
    parts = parts_of(found, samples)
    assert [(round(p.start, 1), round(p.end, 1), p.speaker.user_id if p.speaker else None) for p in parts] == [
        (0.3, 4.3, "george"), (4.4, 7.5, "jackson")]
    assert sum(len(p.samples) for p in parts) == 8 * ID_RATE  # cut in the pause between them, nothing lost


async def test_a_turn_that_may_hold_two_voices_makes_nobody_of_them_until_it_holds_one(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """Two people's voice must adapt no voiceprint and start no user; one new voice still gets its user."""
    env = server_env(tmp_path_factory.mktemp("tentative"))
    utts, long = fsdd(digits=6), fsdd(digits=8)
    async with stdio_session("persona", env) as persona:  # lucas is the new voice here
        for who in ("george", "jackson"):
            await ok(persona, "user_create", {"user_id": who, "name": who.title()})
            await ok(persona, "speaker_enroll", {"user_id": who, "audio": [wav_b64(x) for x in utts[who][:3]]})
    hub = McpHub([McpServerConfig(name="persona", timeout=120)], env)
    await hub.start()
    try:
        cfg = TurnConfig()
        speakers = SpeakerTracker(hub, cfg)
        change = VoiceChange(hub, cfg, speakers)
        for clips, two in (((utts["george"][3], utts["jackson"][3]), True), ((long["lucas"][5],), False)):
            wav = turn_wav(*clips)
            tentative = change.listen(wav)
            speakers.hear("speech_stopped", wav, tentative=tentative)
            assert tentative and await change.differs(120) is two
            speakers.one_voice()
            task = speakers.take(wav)
            assert task is not None
            found = await task
            if two:
                for who in ("george", "jackson"):
                    held = (await hub.call_data("user_get", {"user_id": who}))["voice_samples"]
                    assert held.get("adapted", 0) == 0, (who, held)
            else:
                assert found is not None and found.decision == "provisional", found
        new = (await hub.call_data("user_list", {"provisional": True}))["users"]
        assert found is not None and [u["user_id"] for u in new] == [found.user_id]
    finally:
        await hub.aclose()
