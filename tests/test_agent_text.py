"""Text mode: `AgentSession` without a room, the real livekit-plugins-openai LLM pointed at a local
fake OpenAI-compatible server (real wire protocol, scripted replies and tool calls), and our
real MCP servers over stdio. Also the hub's faults: a killed server, a stalled one, a server
whose tool list changes, one that is unreachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from agent.config import McpServerConfig, PipelineConfig, TurnConfig
from agent.mcp_sessions import McpHub
from agent.remember import Journal, MemoryWriter
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.fakes.waiting import eventually
from tests.support import ALPHAAVATAR, ROOT, http_server, server_env
from tests.text_mode import conversation, user_text

CHANGING = ROOT / "tests" / "fakes" / "changing_mcp_server.py"


class Script:
    """The fake LLM: a scripted reply per user turn; after a tool result, a reply quoting it."""

    def __init__(self) -> None:
        self.rules: dict[str, Reply] = {}

    def __call__(self, body: dict[str, Any]) -> Reply:
        messages = body.get("messages", [])
        if messages and messages[-1].get("role") == "tool":
            return Reply(content="Tool said: " + str(messages[-1].get("content"))[:300])
        text = user_text(body)
        for needle, reply in self.rules.items():
            if needle in text:
                return reply
        return Reply(content="Noted.")


def requests_for(fake: FakeOpenAI, line: str) -> list[str]:
    """Bodies (as JSON text) of the chat requests made for one user turn."""
    return [json.dumps(b) for b in fake.requests if "messages" in b and user_text(b) == line]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("agent-text")


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(Script()) as server:
        yield server


@pytest.fixture(scope="module")
def config(fake: FakeOpenAI) -> PipelineConfig:
    return PipelineConfig.model_validate({
        "avatar": {"id": "test", "name": "Tess", "instructions": "You are Tess."},
        "llm": {"provider": "openai", "model": "fake", "base_url": fake.base_url, "api_key": "k"},
        "mcp_servers": [
            {"name": "memory"},
            {"name": "changing", "command": [sys.executable, str(CHANGING)], "timeout": 10},
        ],
        "character": {"enabled": False},
        "tools": {"visible": ["*"]},  # every tool up front: these tests call them directly
        # These tests check what is recalled, not how fast: a loaded machine must not fail them.
        # The budget itself is checked with a stalled server (and measured by bench/agent_turn.py).
        "turn": {"recall_budget_ms": 20_000},
    })


@pytest.fixture(scope="module")
async def hub(config: PipelineConfig, home: Path) -> AsyncIterator[McpHub]:
    hub = McpHub(config.mcp_servers, server_env(home))
    failures = await hub.start()
    assert not failures, failures
    yield hub
    await hub.aclose()


def memory_pid(home: Path) -> int:
    """The hub's memory server on `home` (a child process of this one), not another module's: a
    session-wide server (conftest's scratch_stdio) is a child of this process too."""
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if "memory" in child.cmdline() and "serve" in child.cmdline() and \
                    child.environ().get("ALPHAAVATAR_HOME") == str(home):
                return child.pid
    raise AssertionError(f"no memory server process on {home}")


async def test_fact_recalled_in_next_session_for_same_user_only(
        fake: FakeOpenAI, config: PipelineConfig, hub: McpHub, home: Path) -> None:
    fact, question = "My dog is called Rexomir and he chases tennis balls.", "What is my dog called?"
    async with conversation(config, hub, home, "alice") as rt:
        assert await rt.agent.text_turn(fact) == "Noted."
    assert rt.hooks.writer is not None and rt.hooks.writer.written >= 1  # flushed on close

    async with conversation(config, hub, home, "alice") as rt:
        await rt.agent.text_turn(question)
        prep = rt.agent.last_prep
    alice = requests_for(fake, question)
    assert alice and "Rexomir" in alice[-1], "the earlier fact was not injected into alice's context"
    assert prep is not None and prep.recall is not None and not prep.recall.late

    before = len(fake.requests)
    async with conversation(config, hub, home, "bob") as rt:
        await rt.agent.text_turn(question)
    bob = [json.dumps(b) for b in fake.requests[before:]]
    assert bob and not any("Rexomir" in body for body in bob), "bob saw alice's memory"

    # The turn was stored for alice, with her words, the reply and the session it came from.
    stored = await hub.call_data("memory_search", {"query": "dog", "user_id": "alice", "limit": 5})
    hit = next(m for m in stored["results"] if "Rexomir" in m["content"])
    assert hit["user_id"] == "alice" and hit["session_id"] and "Noted." in hit["content"]


async def test_llm_tool_call_reaches_its_server_and_is_recorded(
        fake: FakeOpenAI, config: PipelineConfig, hub: McpHub, home: Path) -> None:
    line = "Please remember that my favourite colour is teal."
    fake.responder.rules[line] = Reply(tool_calls=[{  # type: ignore[attr-defined]
        "name": "memory_add", "arguments": {"content": "Carol's favourite colour is teal", "scope": "user",
                                            "user_id": "mallory"}}])
    async with conversation(config, hub, home, "carol") as rt:
        reply = await rt.agent.text_turn(line)
    assert reply.startswith("Tool said:") and "teal" in reply

    # The LLM never saw (or chose) the user: it was pinned to the speaker, not to "mallory".
    body = json.loads(requests_for(fake, line)[0])
    schema = next(t["function"] for t in body["tools"] if t["function"]["name"] == "memory_add")
    assert "user_id" not in schema["parameters"]["properties"]
    mine = await hub.call_data("memory_list", {"user_id": "carol", "scope": "user"})
    assert any("teal" in m["content"] for m in mine["results"])
    theirs = await hub.call_data("memory_list", {"user_id": "mallory"})
    assert theirs["results"] == []

    # ...and the call is in carol's tool memory, with its outcome and timing.
    records = await hub.call_data("tool_experience_search", {"task": line, "tool": "memory_add", "user_id": "carol"})
    record = records["results"][0]
    assert record["success"] is True and record["task"] == line and record["latency_ms"] > 0
    assert record["arguments"]["content"] == "Carol's favourite colour is teal"


async def test_tool_list_changes_are_picked_up(
        fake: FakeOpenAI, config: PipelineConfig, hub: McpHub, home: Path) -> None:
    line = "Unlock the treasure tool."
    fake.responder.rules[line] = Reply(tool_calls=[{"name": "unlock", "arguments": {"name": "treasure"}}])  # type: ignore[attr-defined]
    async with conversation(config, hub, home, "dave") as rt:
        await rt.agent.text_turn(line)
        # the notification arrives on its own; no polling of the server
        await eventually(lambda: hub.has("treasure"), within=5, what="the hub to list the new tool")
        assert hub.has("treasure")
        follow = "Use the treasure tool."
        fake.responder.rules[follow] = Reply(tool_calls=[{"name": "treasure", "arguments": {}}])  # type: ignore[attr-defined]
        reply = await rt.agent.text_turn(follow)
    assert "unlocked treasure" in reply
    offered = json.loads(requests_for(fake, follow)[0])
    assert "treasure" in [t["function"]["name"] for t in offered["tools"]]
    # A call to another server's tool is recorded in the user's tool memory just the same.
    records = await hub.call_data("tool_experience_search", {"task": follow, "tool": "treasure", "user_id": "dave"})
    assert records["results"] and records["results"][0]["outcome"] == "unlocked treasure"


async def test_killed_server_reported_then_reconnected(
        fake: FakeOpenAI, config: PipelineConfig, hub: McpHub, home: Path) -> None:
    line = "What do you remember about me?"
    fake.responder.rules[line] = Reply(tool_calls=[{"name": "memory_search", "arguments": {"query": "me"}}])  # type: ignore[attr-defined]
    async with conversation(config, hub, home, "erin") as rt:
        os.kill(memory_pid(home), signal.SIGKILL)
        reply = await rt.agent.text_turn(line)  # the agent keeps talking
        tool_output = [m for m in json.loads(requests_for(fake, line)[-1])["messages"] if m["role"] == "tool"]
        assert tool_output and "memory server" in tool_output[0]["content"], tool_output
        assert reply.startswith("Tool said:")

        link = hub.links["memory"]
        await asyncio.wait_for(link.ready.wait(), 120)  # restarted with back-off
        again = "Search my memories again."
        fake.responder.rules[again] = Reply(tool_calls=[{"name": "memory_search", "arguments": {"query": "me"}}])  # type: ignore[attr-defined]
        reply = await rt.agent.text_turn(again)
    assert reply.startswith('Tool said: <data source="memory.memory_search">\n{"results"'), reply


async def test_stalled_memory_server_does_not_delay_the_turn(
        fake: FakeOpenAI, config: PipelineConfig, hub: McpHub, home: Path) -> None:
    config = config.model_copy(update={"turn": TurnConfig()})  # the default budget, 150 ms
    async with conversation(config, hub, home, "frank") as rt:
        pid = memory_pid(home)
        os.kill(pid, signal.SIGSTOP)  # alive but answering nothing: the slowest server there is
        try:
            reply = await asyncio.wait_for(rt.agent.text_turn("Hello there, how are you?"), 60)
        finally:
            os.kill(pid, signal.SIGCONT)
        prep = rt.agent.last_prep
    assert reply == "Noted."
    assert prep is not None and prep.recall is not None
    # the budget ended the wait; both calls to the stalled memory server were dropped
    assert sorted(prep.recall.late) == ["followup_list", "memory_search", "tool_experience_search"]


def test_chat_command_piped_then_on_a_terminal(fake: FakeOpenAI, tmp_path: Path) -> None:
    """`alphaavatar chat` piped: one reply per line, a dead server named at start and the rest working.
    Then the same chat on a terminal (a pty here): the reply is written piece by piece as the LLM
    streams it (some read of the terminal holds its start without its end), with what the first chat
    was told in its context. One test for both: each chat run costs seconds of start-up."""
    import pty
    import select

    path = tmp_path / "agent.yaml"
    path.write_text(f"""
llm: {{provider: openai, model: fake, base_url: "{fake.base_url}", api_key: k}}
mcp_servers:
  - memory
  - {{name: weather, url: "http://127.0.0.1:9/mcp", connect_timeout: 5}}
character: {{enabled: false}}
turn: {{recall_budget_ms: 20000}}  # what is recalled, not how fast (bench/agent_turn.py)
""", encoding="utf-8")
    command = [ALPHAAVATAR, "chat", str(path), "--user", "gina"]

    first = subprocess.run(command, input="I live in Lisbon, near the river.\n\nI also play the cello.\n",
                           capture_output=True, text=True, env=server_env(tmp_path), timeout=300)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == ["Noted.", "Noted."]
    assert "MCP server 'weather' is not reachable" in first.stderr and "mcp_servers" in first.stderr

    question, reply = "Where do I live?", "You live in Lisbon, near the river, and you play the cello."
    fake.responder.rules[question] = Reply(content=reply, gap=0.2)  # type: ignore[attr-defined]
    master, slave = pty.openpty()
    proc = subprocess.Popen(command, stdin=slave, stdout=slave, stderr=slave, env=server_env(tmp_path))  # input() prompts on stderr
    os.close(slave)
    seen, snapshots = "", []

    def read_until(wanted: str) -> None:
        nonlocal seen
        while wanted not in seen:
            ready, _, _ = select.select([master], [], [], 120)
            assert ready, f"the terminal never showed {wanted!r}: {seen!r}"
            seen += os.read(master, 4096).decode(errors="replace")
            snapshots.append(seen)

    try:
        read_until("you> ")
        os.write(master, f"{question}\n".encode())
        read_until(reply)
        read_until("you> ")
        os.write(master, b"\x04")  # Ctrl-D: the chat ends
        assert proc.wait(60) == 0
    finally:
        proc.kill()
        os.close(master)
    assert any(reply[:12] in s and reply not in s for s in snapshots), snapshots
    # The terminal is the conversation's: the hub's retries of 'weather' go to the chat's log, never
    # into a reply being written (they split it, and the reply was never seen whole).
    assert "WARNING" not in seen, seen
    assert "weather unavailable" in (tmp_path / "agent" / "logs" / "chat.log").read_text(encoding="utf-8")
    asked = json.loads(requests_for(fake, question)[-1])
    context = [m["content"] for m in asked["messages"] if m["role"] == "system"]
    assert any("Lisbon" in c for c in context), context


def _agent_that_crashes(folder: str) -> None:
    """A child process: an agent whose memory server is unreachable queues a turn, then dies."""

    async def run() -> None:
        writer = MemoryWriter(McpHub([]), Journal(Path(folder), "crashed-session"))
        writer.start()
        writer.submit("memory_add", {"content": "Hank keeps bees on his roof.", "user_id": "hank"})
        await asyncio.sleep(1.0)  # retrying: the server is unreachable
        os._exit(137)  # no flush, no goodbye

    asyncio.run(run())


async def test_writes_of_a_crashed_agent_are_replayed_by_the_next(hub: McpHub, home: Path) -> None:
    folder = home / "journal"
    child = multiprocessing.get_context("spawn").Process(target=_agent_that_crashes, args=(str(folder),))
    child.start()
    await asyncio.to_thread(child.join, 120)
    assert child.exitcode == 137 and (folder / "crashed-session.jsonl").exists()

    writer = MemoryWriter(hub, Journal(folder, "next-session"))
    writer.start()
    assert await writer.flush(60)
    await writer.aclose()
    assert not (folder / "crashed-session.jsonl").exists()
    found = await hub.call_data("memory_search", {"query": "bees", "user_id": "hank"})
    assert [m["content"] for m in found["results"]] == ["Hank keeps bees on his roof."]


async def test_hub_over_streamable_http_with_a_bearer_token(tmp_path: Path) -> None:
    """A server given by URL, with the headers from the config (here: the server's token)."""
    env = server_env(tmp_path, ALPHAAVATAR_TOKEN="s3cret-token")
    with http_server(["serve", "memory", "--transport", "http"], env) as base:
        good = McpServerConfig(name="memory", url=f"{base}/mcp", headers={"Authorization": "Bearer s3cret-token"})
        bad = McpServerConfig(name="stranger", url=f"{base}/mcp", headers={"Authorization": "Bearer wrong"},
                              connect_timeout=10)
        hub = McpHub([good, bad])
        try:
            failures = await hub.start()
            assert list(failures) == ["stranger"] and "401" in failures["stranger"]
            added = await hub.call_data("memory_add", {"content": "Ivy takes the 7:40 train.", "user_id": "ivy"})
            assert added["results"][0]["event"] == "ADD"
        finally:
            await hub.aclose()
