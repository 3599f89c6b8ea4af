"""Several participants' microphones at the session level, through `alphaavatar agent replay` with one
recording per participant (george.wav, lucas.wav: each the stream of the participant of that name).

george, jackson and lucas are enrolled by voice. Each stream's utterances are attributed by the
participant's identity together with the voice: george's and lucas's own voices confirm them;
jackson speaking into george's microphone is a mismatch, uncertain, and nobody's memory gets it.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conversation import Script, Turn, line_at, own_memories, replay, stage, streams
from tests.datasets import needs_fsdd
from tests.fakes.openai_server import FakeOpenAI

# A minute of real-time audio: a participant's identity as a prior their voice confirms, and every
# participant heard, are checked in the default run by test_agent_group; the replay in -m slow.
pytestmark = [needs_fsdd, pytest.mark.slow]

TURNS: list[Turn] = [("george", "Alpha, remind me to buy flowers.", True),
                     ("lucas", "Hi George, what are you up to?", False),
                     ("george", "Lucas, I am planning the weekend.", False),
                     ("jackson", "Alpha, what is the capital of France?", True),
                     ("lucas", "Alpha, add milk to my shopping list.", True)]
STREAMS = ["george", "lucas", "george", "george", "lucas"]  # whose microphone each turn is on


@pytest.fixture(scope="module")
async def replayed(fake: FakeOpenAI, script: Script, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("participants")
    at = await stage(home, fake.base_url)
    wavs, starts = streams(TURNS, STREAMS, at.utts, {k: 3 for k in at.utts}, home, script=script)
    lines = replay(at.config, wavs, at.env)
    return {"starts": starts, "lines": lines, "memories": await own_memories(at.env)}


async def test_each_participants_utterances_are_attributed_by_identity_and_voice(replayed: dict[str, Any]) -> None:
    lines = replayed["lines"]
    assert len(lines) == len(TURNS), lines
    for (voice, text, to_avatar), stream, start in zip(TURNS, STREAMS, replayed["starts"], strict=True):
        line = line_at(lines, start)
        assert line is not None, f"no line for the utterance at {start:.1f} s: {lines}"
        assert line["participant"] == stream and line["text"] == text, line
        assert line["speaker"]["user_id"] == stream, line
        assert line["speaker"]["decision"] == ("known" if voice == stream else "uncertain"), line
        assert line["addressed"] is to_avatar and (line["reply"] is not None) is to_avatar, line


async def test_each_participants_speech_goes_to_their_own_memory(replayed: dict[str, Any]) -> None:
    memories = replayed["memories"]
    assert "buy flowers" in memories["george"] and "planning the weekend" in memories["george"]
    assert "what are you up to" in memories["lucas"] and "milk" in memories["lucas"]
    assert "buy flowers" not in memories["lucas"] and "milk" not in memories["george"]
    assert not any("capital of France" in m for m in memories.values())  # a voice that is not the participant's
