"""What the agent's LLM requests carry, checked on the requests the fake OpenAI-compatible server
recorded: a few tools up front and the rest reachable through find_tools / call_tool; a system
prompt that never changes; one runtime context block after the user's message. And what the user
hears while waiting: status events and spoken fillers. `AgentSession` without a room (typed
turns; spoken replies through the fake's TTS), our memory, research and character servers over
stdio, Tavily faked.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import io
import itertools
import json
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from livekit import rtc
from PIL import Image

from agent.character import CharacterLink
from agent.config import CharacterConfig, ModelConfig, PipelineConfig, StatusConfig, VisionConfig
from agent.context import render
from agent.contracts import Followup, Memory
from agent.mcp_sessions import McpHub
from agent.pipeline import build_runtime
from agent.recall import Recall
from agent.speaker import Speaker
from agent.status import Status, templates
from agent.turn import TurnPrep
from tests import text_mode
from tests.fakes.audio_io import CapturedAudio
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.fakes.tavily_server import FakeTavily
from tests.fakes.waiting import eventually
from tests.support import server_env

Step = Callable[[dict[str, Any]], Reply]


def tool_outputs(body: dict[str, Any]) -> list[str]:
    """The tool results of this turn (after its user message), oldest first."""
    messages = body["messages"]
    last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
    return [str(m.get("content")) for m in messages[last_user + 1:] if m["role"] == "tool"]


class Plan:
    """The fake LLM: for each user line, one scripted step per tool round; then a reply quoting the
    last tool result (or 'Noted.')."""

    def __init__(self) -> None:
        self.steps: dict[str, list[Step]] = {}

    def __call__(self, body: dict[str, Any]) -> Reply:
        messages = body.get("messages", [])
        users = [m for m in messages if m.get("role") == "user"]
        if not users:
            return Reply(content="Noted.")
        done = tool_outputs(body)
        steps = self.steps.get(str(users[-1].get("content")), [])
        if len(done) < len(steps):
            return steps[len(done)](body)
        return Reply(content="Tool said: " + done[-1][:300] if done else "Noted.")


def call(tool: str, **arguments: Any) -> Step:
    return lambda body: Reply(tool_calls=[{"name": tool, "arguments": arguments}])


def call_found(name: str, arguments: dict[str, Any]) -> Step:
    """Pick `name` among what the previous find_tools answered, as a model reading them would, and call it."""

    def step(body: dict[str, Any]) -> Reply:
        found = [t["name"] for t in json.loads(tool_outputs(body)[-1])["tools"]]
        assert name in found, f"find_tools did not find {name}: {found}"
        return Reply(tool_calls=[{"name": "call_tool", "arguments": {"name": name, "arguments": arguments}}])

    return step


def text_of(message: dict[str, Any]) -> str:
    content = message.get("content")
    return content if isinstance(content, str) else " ".join(p["text"] for p in content or [] if p.get("type") == "text")


def images_of(message: dict[str, Any]) -> list[str]:
    content = message.get("content")
    return [p["image_url"]["url"] for p in content if p.get("type") == "image_url"] if isinstance(content, list) else []


def turn_requests(fake: FakeOpenAI, line: str) -> list[dict[str, Any]]:
    return [b for b in fake.requests if "messages" in b
            and [text_of(m) for m in b["messages"] if m["role"] == "user"][-1:] == [line]]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(Plan()) as server:
        yield server


@pytest.fixture(scope="module")
def tavily() -> Iterator[FakeTavily]:
    with FakeTavily() as server:
        yield server


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("agent-requests")


@pytest.fixture(scope="module")
def config(fake: FakeOpenAI) -> PipelineConfig:
    return text_mode.text_config(fake, mcp_servers=["memory", {"name": "research", "timeout": 60}, "character"],
                                 context={"timezone": "Asia/Tokyo"})


@pytest.fixture(scope="module")
async def hub(config: PipelineConfig, home: Path, tavily: FakeTavily) -> AsyncIterator[McpHub]:
    hub = McpHub(config.mcp_servers, server_env(home, TAVILY_API_KEY=tavily.api_key, TAVILY_BASE_URL=tavily.base_url))
    assert not await hub.start()
    yield hub
    await hub.aclose()


conversation = functools.partial(text_mode.conversation, warm_all=True)  # tools are found: their model warm too


def plan(fake: FakeOpenAI) -> Plan:
    assert isinstance(fake.responder, Plan)
    return fake.responder


async def test_a_tool_not_offered_is_found_and_called(
        fake: FakeOpenAI, config: PipelineConfig, hub: McpHub, home: Path) -> None:
    line = "Please make a note that I am allergic to peanuts."
    plan(fake).steps[line] = [
        call("find_tools", query="store a new memory about the user"),
        call_found("memory_add", {"content": "Alice is allergic to peanuts", "scope": "user", "user_id": "mallory"}),
    ]
    async with conversation(config, hub, home, "alice") as rt:
        reply = await rt.agent.text_turn(line)
        await rt.hooks.writer.flush(30)  # type: ignore[union-attr]

    first = turn_requests(fake, line)[0]
    offered = sorted(t["function"]["name"] for t in first["tools"])
    assert offered == ["call_tool", "find_tools", "memory_search", "research", "web_search"]
    assert len(json.dumps(first["tools"])) <= 6000
    assert "memory_add" not in json.dumps(first["tools"])
    # The search found memory_add; its schema came along, without the pinned user_id.
    found = json.loads(tool_outputs(turn_requests(fake, line)[-1])[0])["tools"]
    memory_add = next(t for t in found if t["name"] == "memory_add")
    assert "user_id" not in memory_add["parameters"]["properties"] and "content" in memory_add["parameters"]["properties"]
    assert reply.startswith("Tool said:") and "ADD" in reply
    # Stored for the speaker, not for the user the model named; recorded as memory_add itself.
    mine = await hub.call_data("memory_list", {"user_id": "alice", "scope": "user"})
    assert any("peanuts" in m["content"] for m in mine["results"])
    assert (await hub.call_data("memory_list", {"user_id": "mallory"}))["results"] == []
    records = await hub.call_data("tool_experience_search", {"task": line, "tool": "memory_add", "user_id": "alice"})
    assert records["results"] and records["results"][0]["success"] is True


async def test_call_tool_errors_are_clear_and_the_model_can_repair_the_call(
        fake: FakeOpenAI, config: PipelineConfig, hub: McpHub, home: Path) -> None:
    line = "Write down that I play chess on Sundays."
    plan(fake).steps[line] = [
        call("call_tool", name="memory_teleport", arguments={}),
        call("call_tool", name="memory_add", arguments={"scope": "galaxy", "infer": "yes"}),
        call("call_tool", name="memory_add", arguments={"content": "Bob plays chess on Sundays", "scope": "user"}),
    ]
    async with conversation(config, hub, home, "bob") as rt:
        reply = await rt.agent.text_turn(line)
    unknown, bad, good = tool_outputs(turn_requests(fake, line)[-1])
    assert "no tool named 'memory_teleport'" in unknown and "find_tools" in unknown and "memory_" in unknown
    assert "bad arguments for memory_add" in bad and "infer: 'yes' is not of type 'boolean'" in bad
    assert "scope: 'galaxy' is not one of" in bad and '"content"' in bad  # and the parameters to repair it
    assert '"ADD"' in good and reply.startswith("Tool said:")
    stored = await hub.call_data("memory_list", {"user_id": "bob"})
    assert [m["content"] for m in stored["results"]].count("Bob plays chess on Sundays") == 1  # once, by the good call


async def test_system_prompt_stays_and_the_context_block_follows_the_user(
        fake: FakeOpenAI, config: PipelineConfig, hub: McpHub, home: Path) -> None:
    lines = ["Search my memories for my hobbies.", "I like long walks by the sea.", "Hello again.",
             "Search my memories for what I like.", "Thanks, that is all."]
    plan(fake).steps[lines[0]] = [call("memory_search", query="hobbies")]
    async with conversation(config, hub, home, "carol") as rt:
        for line in lines:
            await rt.agent.text_turn(line)
            await rt.hooks.writer.flush(30)  # type: ignore[union-attr]
    bodies = [turn_requests(fake, line)[0] for line in lines]
    systems = {json.dumps(b["messages"][0]).encode() for b in bodies}
    assert len(systems) == 1 and json.loads(systems.pop())["content"].startswith("You are Tess.")
    tokyo = datetime.now(ZoneInfo("Asia/Tokyo"))
    for body in bodies:
        messages = body["messages"]
        last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
        block = messages[last_user + 1]
        assert block["role"] == "system" and block is messages[-1]
        text = block["content"]
        assert f"{tokyo:%A %d %B %Y}" in text and "Asia/Tokyo, UTC+09:00" in text
        assert "Modality: text" in text and "Speaking now: user id carol" in text
        assert len(text) <= config.context.budget_tokens * 4
        assert sum("Context for this turn" in str(m.get("content")) for m in messages) == 1  # earlier blocks are gone
    # The walk was remembered and recalled; the first turn's search is now tool experience.
    assert "long walks" in bodies[3]["messages"][-1]["content"]
    assert "memory_search(" in bodies[3]["messages"][-1]["content"]


def test_the_block_keeps_to_its_budget() -> None:
    config = PipelineConfig.model_validate({"llm": {"provider": "openai", "model": "m"},
                                            "context": {"budget_tokens": 200, "timezone": "Europe/Lisbon"}})
    memories = [Memory(id=f"m{i}", content=f"Memory number {i}: " + "words " * 30, occurred_at="2026-11-30T10:00:00Z")
                for i in range(20)]
    prep = TurnPrep(Speaker("dora", "Dora"), Recall("dora", memories=memories, profile={"name": "Dora"}))
    block = render(config.context, prep, "voice", [Speaker("eve", "Eve"), Speaker("dora", "Dora")])
    assert len(block) <= 200 * 4
    assert "Speaking now: Dora (user id dora)" in block and "Also present: Eve (user id eve)" in block
    assert "Memory number 0" in block and "Memory number 19" not in block
    assert block.endswith("do not recite it.")


def test_derived_memories_and_due_follow_ups_in_the_block() -> None:
    config = PipelineConfig.model_validate({"llm": {"provider": "openai", "model": "m"}})
    card = Memory(id="c", content="About Aurelio (mentioned in 2 memories):\n- 8 May 2023: I met Aurelio",
                  source="reflection")
    prep = TurnPrep(Speaker("dora", "Dora"), Recall("dora", memories=[card]))
    due = Followup(id="f", text="My exam is on Friday.", kind="event", due_at="2023-05-12T09:00:00+01:00")
    block = render(config.context, prep, "text", [Speaker("dora", "Dora")], followups=[due])
    lines = block.splitlines()
    assert "  - due Friday 12 May, 09:00: My exam is on Friday." in lines
    assert "  - [derived from earlier memories] About Aurelio (mentioned in 2 memories): / - 8 May 2023: I met Aurelio" \
        in lines
    assert lines.index("  - due Friday 12 May, 09:00: My exam is on Friday.") < lines.index(
        next(x for x in lines if "Aurelio" in x))  # follow-ups come first


class RoomData:
    """Stands in for the room's local participant (no LiveKit server runs here): what was published."""

    def __init__(self) -> None:
        self.packets: list[tuple[dict[str, Any], str]] = []

    async def publish_data(self, payload: bytes | str, *, reliable: bool = True,
                           destination_identities: list[str] | None = None, topic: str = "") -> None:
        self.packets.append((json.loads(payload), topic))

    def events(self) -> list[dict[str, Any]]:
        return [e for e, topic in self.packets if topic == "alphaavatar.status"]


async def test_waiting_is_announced_spoken_outside_the_history_and_shown(
        fake: FakeOpenAI, tavily: FakeTavily, config: PipelineConfig, hub: McpHub, home: Path) -> None:
    endpoint = {"provider": "openai", "base_url": fake.base_url, "api_key": "k"}
    spoken = config.model_copy(update={
        "stt": ModelConfig(**endpoint, model="whisper-1"),
        "tts": ModelConfig(**endpoint, model="tts-1", response_format="pcm"),
        "character": CharacterConfig(enabled=True, lip_sync=False)})
    slow_model, research = "What is the capital of Portugal?", "Research the lighthouse of Alexandria for me."
    plan(fake).steps[slow_model] = [lambda body: Reply(content="It is Lisbon.", delay=2.5)]
    plan(fake).steps[research] = [call("research", question="lighthouse of Alexandria", sources="web")]
    runtime = build_runtime(spoken, hub, user_id="gus", voice=True, home=home / "agent")
    runtime.session.output.audio = CapturedAudio()
    room = RoomData()
    runtime.agent.status.publish_to(room)
    await runtime.warm()
    await runtime.session.start(runtime.agent, record=False)
    tavily.delay = 3.0  # each web search takes 3 s
    try:
        assert await runtime.agent.text_turn(slow_model) == "It is Lisbon."
        turn = asyncio.create_task(runtime.agent.text_turn(research))
        # While the tool runs, the character shows it is thinking.
        await eventually(lambda: any(e["kind"] == "tool_start" for e in room.events()), within=60, what="tool_start")
        await runtime.character.drain(30)
        shown = (await hub.call_data("character_status", {}))["last_events"]
        assert not turn.done()
        await turn
        history = json.dumps(runtime.session.history.to_dict())
        await runtime.character.drain(30)
    finally:
        tavily.delay = 0.0
        await runtime.aclose()
    events = room.events()
    en = templates()["en"]

    # A model silent for 2.5 s: a filler is spoken before the reply, in this reply's audio.
    waited = next(e for e in events if e["kind"] == "thinking" and e.get("filler"))
    assert waited["filler"] in en["thinking"]
    inputs = [s["input"].strip() for s in fake.speeches]
    assert inputs.index(waited["filler"]) < inputs.index("It is Lisbon.")

    # A long tool: announced when it starts, spoken (TTS requested) before it answers.
    kinds = [e["kind"] for e in events if e["turn"] == events[-1]["turn"]]
    assert kinds[0] == "thinking" and kinds[-1] == "finalizing"
    assert kinds.index("tool_start") < kinds.index("tool_progress") < kinds.index("tool_end") < kinds.index("finalizing")
    start = next(e for e in events if e["kind"] == "tool_start")
    end = next(e for e in events if e["kind"] == "tool_end")
    assert start["tool"] == end["tool"] == "research" and start["filler"] in en["long_tool"]
    said = next(s for s in fake.speeches if s["input"].strip() == start["filler"])
    assert said["_at"] < end["at"] and end["at"] - start["at"] >= 3.0
    progress = [e for e in events if e["kind"] == "tool_progress"]
    assert progress and all(e["tool"] == "research" and e.get("message") for e in progress)

    # Fillers are never part of the conversation: not in the history, not in the next request.
    assert waited["filler"] not in history and start["filler"] not in history
    assert not any(start["filler"] in json.dumps(b) for b in turn_requests(fake, research))
    assert {"kind": "expression", "emotion": "think"} in [{k: e.get(k) for k in ("kind", "emotion")} for e in shown]
    assert any(e.get("kind") == "state" and e.get("state") == "thinking" for e in shown)


async def test_sight_frames_of_this_turn_only_downscaled_and_switchable(
        fake: FakeOpenAI, config: PipelineConfig, hub: McpHub, home: Path) -> None:
    seeing = config.model_copy(update={"vision": VisionConfig(enabled=True, frames=3, max_side=512)})
    lines = ["What colour am I wearing?", "And now?", "Can you see me?"]
    async with conversation(seeing, hub, home, "hana") as rt:
        for line, colour in zip(lines, ("red", "blue", "green"), strict=True):
            picture = Image.new("RGBA", (1280, 720), colour)
            for _ in range(8):  # a webcam: several frames during the turn
                rt.agent.view.camera.see(rtc.VideoFrame(1280, 720, rtc.VideoBufferType.RGBA, picture.tobytes()))
            if line == lines[2]:
                rt.agent.view.sight = False  # the session's switch
            await rt.agent.text_turn(line)
    first, second, third = (turn_requests(fake, line)[-1]["messages"] for line in lines)
    users = [[m for m in messages if m["role"] == "user"] for messages in (first, second, third)]

    def pixels(url: str) -> tuple[tuple[int, int], tuple[int, int, int]]:
        with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as image:
            return image.size, image.convert("RGB").getpixel((10, 10))

    now = images_of(users[0][-1])
    assert 1 <= len(now) <= 3 and all(pixels(u)[0] == (512, 288) for u in now)
    assert all(pixels(u)[1][0] > 200 for u in now)  # red
    # The next turn: its own frames (blue) on its own message; none resent on the earlier one.
    assert images_of(users[1][0]) == [] and 1 <= len(images_of(users[1][-1])) <= 3
    assert all(pixels(u)[1][2] > 200 for u in images_of(users[1][-1]))
    assert "Sight: on: " in second[-1]["content"]
    # Switched off: no frame at all, and the context says so.
    assert not any(images_of(m) for m in users[2])
    assert "Sight: off" in third[-1]["content"]


def test_fillers_follow_the_profile_and_vary() -> None:
    """Verbosity and language come from the speaker's profile (as profile_get returns it, compacted)."""
    status = Status(StatusConfig(), CharacterLink(McpHub([]), CharacterConfig(enabled=False)))
    said: list[str] = []
    status.speak = said.append
    status.begin_turn("t1", {"custom": {"status_verbosity": "quiet"}})
    assert status.emit("tool_start", tool="research").filler is None and said == []
    status.begin_turn("t2", {"identity": {"languages": ["French"]}})
    first = status.emit("tool_start", tool="research").filler
    assert first in templates()["fr"]["long_tool"] and said == [first]
    assert status.emit("tool_start", tool="web_search").filler is None  # one filler every few seconds
    assert status.emit("tool_start", tool="memory_search").filler is None  # not a long tool
    fillers = []
    for turn in range(12):
        status.begin_turn(f"u{turn}", None)
        fillers.append(status.emit("tool_start", tool="research").filler)
    assert all(f in templates()["en"]["long_tool"] for f in fillers)
    assert all(a != b for a, b in itertools.pairwise(fillers)) and len(set(fillers)) > 1
