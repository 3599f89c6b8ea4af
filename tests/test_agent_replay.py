"""Several people, one avatar, through `alphaavatar agent replay` on real voices.

Three FSDD speakers are enrolled by voice (george, jackson, lucas); a fourth (nicolas) never is.
Recorded conversations of them play into the voice agent (Silero VAD, the fake OpenAI-compatible
STT reading a script in order, the fake LLM recording every request, our memory, persona and
character servers over stdio), one after another through one run of the real CLI, each in a
session of its own (the servers start once):
  A  george alone tells the avatar a secret;
  B  lucas and george talk to each other, then each of them, jackson and the unknown voice ask the avatar;
  C  george alone asks about it again.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conversation import ENROLLED, Script, Turn, line_at, own_memories, recording, replay_several, stage
from tests.datasets import needs_fsdd
from tests.fakes.openai_server import FakeOpenAI, Reply

# Minutes of real-time audio: attribution, addressing and who hears a private fact are checked in the
# default run by test_agent_voice, test_agent_group and test_visibility; the whole conversation in -m slow.
pytestmark = [needs_fsdd, pytest.mark.slow]

SECRET = "surprise party"
UNKNOWN = "nicolas"
RUNS: dict[str, list[Turn]] = {
    "A": [("george", "Alpha, remember that I am planning a surprise party for Lucas on Friday. Keep it secret.", True)],
    "B": [("lucas", "Hey George, how was your day?", False),
          ("george", "Pretty good, Lucas, thanks for asking.", False),
          ("george", "Alpha, what am I planning for Friday?", True),
          ("lucas", "Alpha, is anything special planned for Friday?", True),
          ("jackson", "Alpha, what is the weather like tomorrow?", True),
          (UNKNOWN, "Alpha, who are you?", True)],
    "C": [("george", "Alpha, what did I tell you about Friday?", True)],
}


@pytest.fixture(scope="module")
def script() -> Script:
    return Script()


@pytest.fixture(scope="module")
def asked() -> list[tuple[int, dict[str, Any]]]:
    """Each request the fake LLM got, with how many lines the fake STT had transcribed by then."""
    return []


@pytest.fixture(scope="module")
def fake(script: Script, asked: list[tuple[int, dict[str, Any]]]) -> Iterator[FakeOpenAI]:
    def answer(body: dict[str, Any]) -> Reply:
        asked.append((script.heard, body))
        return Reply(content="Sure.")

    with FakeOpenAI(answer, transcriber=script.transcribe) as server:
        yield server


@pytest.fixture(scope="module")
async def replays(fake: FakeOpenAI, script: Script, asked: list[tuple[int, dict[str, Any]]],
                  tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("replay")
    at = await stage(home, fake.base_url)
    used = {k: 3 for k in at.utts}
    wavs = {run: home / f"{run}.wav" for run in RUNS}
    starts = {run: recording(turns, at.utts, used, wavs[run]) for run, turns in RUNS.items()}
    script.lines, script.heard = [t for turns in RUNS.values() for _, t, _ in turns], 0
    lines = dict(zip(RUNS, replay_several(at.config, list(wavs.values()), at.env), strict=True))
    # Every LLM request follows the transcript of a turn: it belongs to the run of the last line heard.
    first = dict(zip(RUNS, itertools.accumulate([0, *map(len, RUNS.values())]), strict=False))
    assert len(asked) == len(fake.requests)  # nothing reached the fake but chat requests

    def run_of(heard: int) -> str:
        return [run for run in RUNS if first[run] < max(heard, 1)][-1]

    out: dict[str, Any] = {run: (starts[run], lines[run], [body for heard, body in asked if run_of(heard) == run])
                           for run in RUNS}
    out["memories"] = await own_memories(at.env)
    return out


async def test_each_utterance_attributed_and_answered_only_when_addressed(replays: dict[str, Any]) -> None:
    for run, turns in RUNS.items():
        starts, lines, _ = replays[run]
        assert len(lines) == len(turns), lines
        for (speaker, text, to_avatar), start in zip(turns, starts, strict=True):
            line = line_at(lines, start)
            assert line is not None, f"{run}: no line for the utterance at {start:.1f} s: {lines}"
            who = line["speaker"]["user_id"]
            if speaker in ENROLLED:
                assert who == speaker, line
            else:
                assert who not in ENROLLED, line  # the unknown voice is never an enrolled person
            assert line["text"] == text
            assert line["addressed"] is to_avatar, line
            assert (line["reply"] is not None) is to_avatar, line
            assert line["why"]
            assert line["speaker"]["user_id"] is None or line["speaker"]["user_id"] in line["present"]
    # lucas and george talked to each other: in company, each named the other
    _, lines, _ = replays["B"]
    assert lines[0]["why"].startswith("other name") and set(lines[1]["present"]) >= {"george", "lucas"}


async def test_a_private_fact_reaches_the_llm_only_when_its_person_is_alone(replays: dict[str, Any]) -> None:
    assert SECRET not in json.dumps(replays["B"][2])  # lucas was listening
    assert SECRET in json.dumps(replays["C"][2])  # george alone again


async def test_each_person_speech_is_in_their_memory_only(replays: dict[str, Any]) -> None:
    memories = replays["memories"]
    assert SECRET in memories["george"] and "how was your day" in memories["lucas"]
    assert SECRET not in memories["lucas"] and SECRET not in memories["jackson"]
    assert "weather like tomorrow" in memories["jackson"]
    assert not any("who are you" in m for m in memories.values())  # the unknown voice is nobody's
    assert not any("how was your day" in memories[w] for w in ("george", "jackson"))
