"""Voice mode without LiveKit: the session's audio input is fed from real recordings (FSDD
speakers), Silero VAD finds the turns, STT and TTS come from the fake OpenAI-compatible server
(TTS speaks with espeak-ng), the audio output is captured. Our memory, persona and character
servers run over stdio. Two voices take turns: each turn is attributed to its own speaker, and
one speaker's memories never reach the LLM while the other is present.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import numpy as np
import pytest
from livekit import rtc
from livekit.agents import utils
from livekit.agents.voice import io
from PIL import Image

from agent.config import PipelineConfig
from agent.mcp_sessions import McpHub
from agent.pipeline import Runtime, build_runtime
from tests.datasets import FACES, digits_of, needs_faces, needs_fsdd
from tests.fakes.audio_io import CapturedAudio
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.support import server_env

pytestmark = needs_fsdd


class PushedAudio(io.AudioInput):
    """The session's microphone: frames pushed by the test at the pace of real time."""

    def __init__(self) -> None:
        super().__init__(label="recordings")
        self.frames = utils.aio.Chan[rtc.AudioFrame]()

    async def __anext__(self) -> rtc.AudioFrame:
        return await self.frames.__anext__()

    async def say(self, samples: np.ndarray, rate: int, silence: float = 1.0) -> None:
        step = rate // 100  # 10 ms frames, as a microphone delivers them
        audio = np.concatenate([samples, np.zeros(int(rate * silence), dtype=np.int16)])
        start = time.perf_counter()
        for i in range(0, len(audio), step):
            chunk = audio[i:i + step]
            self.frames.send_nowait(rtc.AudioFrame(chunk.tobytes(), rate, 1, len(chunk)))
            await asyncio.sleep(max(0.0, start + (i + step) / rate - time.perf_counter()))


class Turns:
    """What the fake STT hears for the turn being spoken, and what the fake LLM answers (`calls`:
    a transcript the model answers with a tool call, as a model that obeys would)."""

    def __init__(self) -> None:
        self.transcript = ""
        self.calls: dict[str, dict[str, Any]] = {}

    def transcribe(self, wav: bytes) -> str:
        return self.transcript

    def reply(self, body: dict[str, Any]) -> Reply:
        messages = body.get("messages", [])
        if messages and messages[-1].get("role") == "tool":
            return Reply(content="Tool said: " + str(messages[-1].get("content"))[:1000])
        heard = next((m.get("content") for m in reversed(messages) if m.get("role") == "user"), None)
        if isinstance(heard, str) and heard in self.calls:
            return Reply(tool_calls=[self.calls[heard]])
        return Reply(content="[happy] Got it, thanks for telling me. I will remember that.")


@pytest.fixture(scope="module")
def turns() -> Turns:
    return Turns()


@pytest.fixture(scope="module")
def fake(turns: Turns) -> Iterator[FakeOpenAI]:
    with FakeOpenAI(turns.reply, transcriber=turns.transcribe) as server:
        yield server


@pytest.fixture(scope="module")
async def voice(fake: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Runtime, PushedAudio, CapturedAudio]]:
    home = tmp_path_factory.mktemp("agent-voice")
    endpoint = {"provider": "openai", "base_url": fake.base_url, "api_key": "k"}
    config = PipelineConfig.model_validate({
        "llm": {**endpoint, "model": "fake"},
        "stt": {**endpoint, "model": "whisper-1"},
        "tts": {**endpoint, "model": "tts-1", "response_format": "pcm"},
        "vad": {"provider": "silero", "min_silence_duration": 0.8},
        "mcp_servers": ["memory", "persona", "character"],
        "turn": {"recall_budget_ms": 20_000, "identify_budget_ms": 20_000},  # what, not how fast
        "group": {"addressing": False},  # every turn answered: addressing is tested through replay
    })
    hub = McpHub(config.mcp_servers, server_env(home))
    assert not await hub.start()
    runtime = build_runtime(config, hub, voice=True, home=home / "agent")
    microphone, speaker = PushedAudio(), CapturedAudio()
    runtime.session.input.audio = microphone
    runtime.session.output.audio = speaker
    await runtime.hooks.warm()
    await runtime.session.start(runtime.agent, record=False)
    yield runtime, microphone, speaker
    await runtime.aclose()
    await hub.aclose()


async def speak_turn(runtime: Runtime, microphone: PushedAudio, turns: Turns, speaker: str, digits: str,
                     index: int, transcript: str) -> Any:
    """One spoken user turn; returns the turn's preparation (speaker, recall) once replied to."""
    replies = sum(1 for m in runtime.session.history.items if getattr(m, "role", None) == "assistant")
    turns.transcript = transcript
    samples, rate = digits_of(speaker, digits, index)
    await microphone.say(samples, rate)
    for _ in range(600):
        done = sum(1 for m in runtime.session.history.items if getattr(m, "role", None) == "assistant")
        if done > replies and runtime.session.agent_state == "listening":
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError(f"no reply to {speaker}'s turn {transcript!r}")
    prep = runtime.agent.last_prep
    assert prep is not None
    return prep


async def user_with_face(runtime: Runtime, name: str, photo: str) -> str:
    """A new persona user (through the agent's own MCP hub) with one face enrolled from FACES/photo."""
    user = (await runtime.hub.call_data("user_create", {"name": name}))["user_id"]
    image = base64.b64encode((FACES / photo).read_bytes()).decode()
    await runtime.hub.call_data("face_enroll", {"user_id": user, "image": image}, time_limit=120)
    return str(user)


def chat_requests(fake: FakeOpenAI, transcript: str) -> list[dict[str, Any]]:
    return [b for b in fake.requests if "messages" in b and b["messages"]
            and any(m.get("role") == "user" and m.get("content") == transcript for m in b["messages"][-3:])]


async def test_two_speakers_attributed_and_recalled_separately(
        voice: tuple[Runtime, PushedAudio, CapturedAudio], turns: Turns, fake: FakeOpenAI) -> None:
    runtime, microphone, speaker = voice
    a1 = await speak_turn(runtime, microphone, turns, "george", "12345", 1, "My boat is called Seabird.")
    alone = len(fake.requests)
    b1 = await speak_turn(runtime, microphone, turns, "jackson", "67890", 1, "What is my boat called, George?")
    a2 = await speak_turn(runtime, microphone, turns, "george", "98765", 2, "Remind me, what is my boat called?")
    b2 = await speak_turn(runtime, microphone, turns, "jackson", "43210", 2, "I ride a red bicycle.")

    # A new voice becomes a provisional user; the same voice later is the same user.
    assert a1.speaker.decision == "provisional" and b1.speaker.decision == "provisional"
    george, jackson = a1.speaker.user_id, b1.speaker.user_id
    assert george != jackson
    assert a2.speaker.user_id == george and b2.speaker.user_id == jackson
    # ...identified while the end-of-turn silence ran, not after it
    assert any(p.identified_early for p in (a1, b1, a2, b2))

    # A's memory was told to the avatar alone: private, it reaches no request while B is present.
    def context(transcript: str) -> str:
        body = chat_requests(fake, transcript)[-1]
        return json.dumps([m for m in body["messages"] if m["role"] == "system"])

    assert "Seabird" not in context("Remind me, what is my boat called?")
    assert "Seabird" not in context("What is my boat called, George?")
    assert not any("Seabird" in json.dumps(body) for body in fake.requests[alone:])
    assert george in context("Remind me, what is my boat called?")
    # The context block of a spoken turn says so, and names who else is in the room.
    block = context("What is my boat called, George?")
    assert "Modality: voice" in block and f"Speaking now: user id {jackson}" in block
    assert f"Also present: user id {george}" in block

    # Each turn went to its speaker's memory.
    await runtime.hooks.writer.flush(60)  # type: ignore[union-attr]
    mine = await runtime.hub.call_data("memory_list", {"user_id": george, "scope": "user"})
    theirs = await runtime.hub.call_data("memory_list", {"user_id": jackson, "scope": "user"})
    assert any("Seabird" in m["content"] for m in mine["results"])
    assert not any("Seabird" in m["content"] for m in theirs["results"])
    assert any("bicycle" in m["content"] for m in theirs["results"])

    # The replies were spoken (tags stripped before TTS) and reached the character.
    assert sum(f.duration for f in speaker.frames) > 1.0
    assert fake.speeches and all("[happy]" not in s["input"] for s in fake.speeches)
    await runtime.character.drain(30)
    status = await runtime.hub.call_data("character_status", {})
    kinds = [e.get("kind") for e in status["last_events"]]
    assert "expression" in kinds and "state" in kinds
    # Lip-sync sentence by sentence, each sent as soon as its audio was synthesized.
    spoken = [e["text"] for e in status["last_events"] if e.get("kind") == "speech"]
    assert "I will remember that." in spoken and all("[happy]" not in t for t in spoken)




@needs_faces
async def test_a_face_on_camera_refines_who_is_speaking(
        voice: tuple[Runtime, PushedAudio, CapturedAudio], turns: Turns) -> None:
    """A voice never heard before, with a known face on camera: the turn is that person's."""
    runtime, microphone, _ = voice
    barack = await user_with_face(runtime, "Barack", "obama/obama_1.jpg")

    with Image.open(FACES / "obama" / "obama_2.jpg") as image:
        rgba = image.convert("RGBA")
    frame = rtc.VideoFrame(rgba.width, rgba.height, rtc.VideoBufferType.RGBA, rgba.tobytes())

    async def camera() -> None:  # a webcam at 5 frames per second
        while True:
            runtime.agent.view.camera.see(frame)
            await asyncio.sleep(0.2)

    filming = asyncio.create_task(camera())
    try:
        prep = await speak_turn(runtime, microphone, turns, "lucas", "13579", 1, "Good morning, everyone.")
    finally:
        filming.cancel()
    assert prep.speaker.user_id == barack and prep.speaker.decision == "known"


async def test_only_the_speakers_own_yes_lets_their_erasure_run(
        voice: tuple[Runtime, PushedAudio, CapturedAudio], turns: Turns) -> None:
    """george asks to be forgotten; jackson's voice says yes: nothing happens. george's own yes does."""
    runtime, microphone, _ = voice
    forget = {"name": "call_tool", "arguments": {"name": "memory_forget_user", "arguments": {}}}
    ask, theirs, mine = "Please forget everything about me.", "Yes, go ahead.", "Yes, please do it."
    turns.calls = {ask: forget, mine: forget}

    def said(prep: Any) -> str:
        last = [m for m in runtime.session.history.items if getattr(m, "role", None) == "assistant"][-1]
        return str(last.text_content)

    kite = await speak_turn(runtime, microphone, turns, "george", "24680", 3, "My kite is orange and red.")
    george = kite.speaker.user_id
    asked = await speak_turn(runtime, microphone, turns, "george", "13579", 4, ask)
    assert asked.speaker.user_id == george and "Nothing was done yet" in said(asked)
    other = await speak_turn(runtime, microphone, turns, "jackson", "97531", 3, theirs)
    assert other.speaker.user_id != george
    again = await speak_turn(runtime, microphone, turns, "george", "86420", 5, ask)
    assert again.speaker.user_id == george and "Nothing was done yet" in said(again)
    await runtime.hooks.writer.flush(60)  # type: ignore[union-attr]
    kept = await runtime.hub.call_data("memory_list", {"user_id": george, "scope": "user"})
    assert any("kite" in m["content"] for m in kept["results"]), "jackson's yes erased george's memories"

    yes = await speak_turn(runtime, microphone, turns, "george", "11223", 6, mine)
    assert yes.speaker.user_id == george and "memories_deleted" in said(yes), said(yes)
    gone = await runtime.hub.call_data("memory_list", {"user_id": george, "scope": "user"})
    assert not any("kite" in m["content"] for m in gone["results"])
