"""Identity that settles, in voice mode (real recordings, real memory and persona servers over stdio,
the fake OpenAI-compatible server scripting the LLM): a provisional voice that names itself is
renamed through `confirm_identity`, and what it said is recalled for the named user in a new
session; a provisional voice whose known face comes on camera is merged into that user.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from typing import Any

import pytest
from livekit import rtc
from PIL import Image

from agent.mcp_sessions import ToolFailed
from agent.pipeline import Runtime, build_runtime
from tests.datasets import FACES, digits_of, needs_faces, needs_fsdd, wav_b64
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.test_agent_voice import PushedAudio, Turns, chat_requests, fake, speak_turn, user_with_face, voice

__all__ = ["fake", "voice"]  # the voice session of test_agent_voice, with this module's `turns`
pytestmark = needs_fsdd


def tool_answers(fake: FakeOpenAI, transcript: str) -> list[str]:
    """What tools answered the LLM in the requests of the turns with this transcript."""
    return [str(m["content"]) for b in fake.requests if "messages" in b
            and any(m.get("role") == "user" and m.get("content") == transcript for m in b["messages"])
            for m in b["messages"] if m.get("role") == "tool"]


class NamingTurns(Turns):
    """A person who says their name gets a `confirm_identity` call; a tool result gets a greeting."""

    def reply(self, body: dict[str, Any]) -> Reply:
        messages = body.get("messages", [])
        if messages and messages[-1].get("role") == "tool":
            return Reply(content="Nice to meet you. " + str(messages[-1].get("content"))[:200])
        if said := re.search(r"\bI(?:'m| am) ([A-Z]\w+)", self.transcript):
            return Reply(tool_calls=[{"name": "confirm_identity", "arguments": {"name": said.group(1)}}])
        return Reply(content="Got it.")


@pytest.fixture(scope="module")
def turns() -> Turns:
    return NamingTurns()


async def test_a_voice_that_names_itself_keeps_its_memories(
        voice: tuple[Runtime, PushedAudio, Any], turns: Turns, fake: FakeOpenAI, tmp_path: Any) -> None:
    runtime, microphone, _ = voice
    told = await speak_turn(runtime, microphone, turns, "george", "12345", 1, "My boat is called Seabird.")
    assert told.speaker.decision == "provisional"
    george = told.speaker.user_id
    named = await speak_turn(runtime, microphone, turns, "george", "98765", 2, "I'm George, by the way.")
    assert named.speaker.user_id == george
    # the LLM was offered the tool, called it, and got an answer it can say
    bodies = chat_requests(fake, "I'm George, by the way.")
    assert any(t["function"]["name"] == "confirm_identity" for t in bodies[0]["tools"])
    answers = tool_answers(fake, "I'm George, by the way.")
    assert any("this is George" in a for a in answers), answers
    user = await runtime.hub.call_data("user_get", {"user_id": george})
    assert user["name"] == "George" and user["provisional"] is False
    assert runtime.hooks.speaker is not None and runtime.hooks.speaker.name == "George"

    # A new session for George (typed): the boat he told about as an unnamed voice is recalled for him.
    await runtime.hooks.writer.flush(60)  # type: ignore[union-attr]
    later = build_runtime(runtime.config, runtime.hub, user_id=george, home=tmp_path)
    await later.session.start(later.agent, record=False)
    try:
        await later.agent.text_turn("What is my boat called?")
    finally:
        await later.aclose()
    block = json.dumps([m for m in chat_requests(fake, "What is my boat called?")[-1]["messages"]
                        if m["role"] == "system"])
    assert "Seabird" in block and "George" in block

    # A second claim of the same name by another voice does not hand it George's memories.
    other = await speak_turn(runtime, microphone, turns, "jackson", "67890", 1, "I'm George, by the way.")
    assert other.speaker.user_id != george
    assert any("nothing was merged" in a for a in tool_answers(fake, "I'm George, by the way."))
    mine = await runtime.hub.call_data("memory_list", {"user_id": other.speaker.user_id, "scope": "user"})
    assert not any("Seabird" in m["content"] for m in mine["results"])


@needs_faces
async def test_a_known_face_merges_a_provisional_voice(
        voice: tuple[Runtime, PushedAudio, Any], turns: Turns) -> None:
    runtime, microphone, _ = voice
    barack = await user_with_face(runtime, "Barack", "obama/obama_1.jpg")
    first = await speak_turn(runtime, microphone, turns, "lucas", "13579", 1, "My cat is called Pixel.")
    assert first.speaker.decision == "provisional"
    lucas = first.speaker.user_id

    with Image.open(FACES / "obama" / "obama_2.jpg") as image:
        rgba = image.convert("RGBA")
    frame = rtc.VideoFrame(rgba.width, rgba.height, rtc.VideoBufferType.RGBA, rgba.tobytes())
    photo_of_turn = base64.b64encode((FACES / "obama" / "obama_2.jpg").read_bytes()).decode()

    async def camera() -> None:
        while True:
            runtime.agent.view.camera.see(frame)
            await asyncio.sleep(0.2)

    filming = asyncio.create_task(camera())
    try:
        # Identified on its first 1.5 s of speech: the face is Barack's for sure, the voice only maybe
        # lucas's ('uncertain'): no merge.
        samples, rate = digits_of("lucas", "24680", 2)
        head = samples[: int(rate * runtime.config.turn.stream_identify_s)]
        probe = await runtime.hub.call_data("identify", {"audio": wav_b64(head, rate), "image": photo_of_turn})
        assert probe["face"]["decision"] == "known" and probe["voice"]["decision"] == "uncertain"
        seen = await speak_turn(runtime, microphone, turns, "lucas", "24680", 2, "Good morning again.")
        assert seen.speaker.user_id == barack and seen.speaker.decision == "known"
        assert runtime.hooks.settler is not None
        await runtime.hooks.settler.settled()
        assert (await runtime.hub.call_data("user_get", {"user_id": lucas}))["provisional"] is True
        # Identified on the whole turn: the voice is lucas's for sure too, so lucas was Barack all along.
        runtime.hooks.cfg.stream_identify_s = 0
        seen = await speak_turn(runtime, microphone, turns, "lucas", "2468013579", 3, "Good evening.")
    finally:
        filming.cancel()
        runtime.hooks.cfg.stream_identify_s = runtime.config.turn.stream_identify_s
    assert seen.speaker.user_id == barack
    assert runtime.hooks.settler is not None
    await runtime.hooks.settler.settled()
    with pytest.raises(ToolFailed):
        await runtime.hub.call_data("user_get", {"user_id": lucas})
    await runtime.hooks.writer.flush(60)  # type: ignore[union-attr]
    his = await runtime.hub.call_data("memory_list", {"user_id": barack, "scope": "user"})
    assert any("Pixel" in m["content"] for m in his["results"])
    left = await runtime.hub.call_data("memory_list", {"user_id": lucas, "scope": "user"})
    assert left["total"] == 0


@needs_faces
async def test_ask_first_merges_only_after_the_person_says_yes(
        voice: tuple[Runtime, PushedAudio, Any], turns: Turns, fake: FakeOpenAI) -> None:
    runtime, microphone, _ = voice
    assert runtime.hooks.settler is not None
    joe = await user_with_face(runtime, "Joe", "biden/biden_1.jpg")
    first = await speak_turn(runtime, microphone, turns, "nicolas", "13579", 1, "I like green tea.")
    assert first.speaker.decision == "provisional"
    nicolas = first.speaker.user_id

    with Image.open(FACES / "biden" / "biden_1.jpg") as image:  # the only photo: enrolled and on camera
        rgba = image.convert("RGBA")
    frame = rtc.VideoFrame(rgba.width, rgba.height, rtc.VideoBufferType.RGBA, rgba.tobytes())

    async def camera() -> None:
        while True:
            runtime.agent.view.camera.see(frame)
            await asyncio.sleep(0.2)

    filming = asyncio.create_task(camera())
    runtime.hooks.cfg.stream_identify_s, runtime.hooks.settler.mode = 0, "ask"
    try:
        await speak_turn(runtime, microphone, turns, "nicolas", "2468013579", 2, "Hello there.")
        await runtime.hooks.settler.settled()
        assert (await runtime.hub.call_data("user_get", {"user_id": nicolas}))["provisional"] is True
        block = json.dumps([m for m in chat_requests(fake, "Hello there.")[-1]["messages"] if m["role"] == "system"])
        assert "ask if they are Joe" in block
        await speak_turn(runtime, microphone, turns, "nicolas", "9753102468", 3, "Yes, I am Joe.")
    finally:
        filming.cancel()
        runtime.hooks.cfg.stream_identify_s = runtime.config.turn.stream_identify_s
        runtime.hooks.settler.mode = runtime.config.turn.merge_provisional
    assert any("this is Joe" in a for a in tool_answers(fake, "Yes, I am Joe.")), tool_answers(fake, "Yes, I am Joe.")
    with pytest.raises(ToolFailed):
        await runtime.hub.call_data("user_get", {"user_id": nicolas})
    await runtime.hooks.writer.flush(60)  # type: ignore[union-attr]
    his = await runtime.hub.call_data("memory_list", {"user_id": joe, "scope": "user"})
    assert any("green tea" in m["content"] for m in his["results"])
