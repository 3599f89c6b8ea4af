"""The agent's own initiative (`behavior:`): due follow-ups in the turn's context, raised once and only in
front of who may hear them, and a reflection when the conversation ends. Text mode with the real
memory server over stdio and the fake OpenAI-compatible LLM."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.config import PipelineConfig
from agent.mcp_sessions import McpHub
from agent.speaker import Speaker
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.support import server_env
from tests.text_mode import conversation, text_config, user_text


def context_for(fake: FakeOpenAI, line: str) -> str:
    """The system messages of the last chat request made for one user turn."""
    bodies = [b for b in fake.requests if "messages" in b and user_text(b) == line]
    assert bodies, f"no request for {line!r}"
    return "\n".join(str(m["content"]) for m in bodies[-1]["messages"] if m["role"] == "system")


def raised_in(fake: FakeOpenAI, line: str) -> str:
    """The follow-ups the context of one user turn brings up (its '- due ...' lines)."""
    return "\n".join(x for x in context_for(fake, line).splitlines() if x.startswith("  - due "))


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(lambda body: Reply(content="Noted.")) as server:
        yield server


@pytest.fixture(scope="module")
def config(fake: FakeOpenAI) -> PipelineConfig:
    return text_config(fake, mcp_servers=[{"name": "memory"}])


@pytest.fixture(scope="module")
async def hub(config: PipelineConfig, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[McpHub]:
    hub = McpHub(config.mcp_servers, server_env(tmp_path_factory.mktemp("agent-followups")))
    assert not await hub.start()
    yield hub
    await hub.aclose()


async def said(hub: McpHub, user: str, text: str, when: datetime, **extra: Any) -> str:
    added = await hub.call_data("memory_add", {"content": text, "user_id": user, "occurred_at": when.isoformat(),
                                               "infer": False, **extra})
    return str(added["results"][0]["id"])


async def statuses(hub: McpHub, user: str) -> dict[str, str]:
    listed = await hub.call_data("followup_list", {"user_id": user, "include_done": True})
    return {f["text"]: f["status"] for f in listed["results"]}


async def test_due_follow_ups_raised_once(fake: FakeOpenAI, config: PipelineConfig, hub: McpHub, tmp_path: Path) -> None:
    two_days_ago = datetime.now(UTC) - timedelta(days=2)
    await said(hub, "hana", "Remind me to call my mother tomorrow at six.", two_days_ago)
    await said(hub, "hana", "My driving exam is tomorrow at 10am.", two_days_ago)
    await said(hub, "hana", "My exam is in two weeks.", two_days_ago)  # not due yet
    call_mum, test, exam = ("call my mother", "driving exam", "exam is in two weeks")

    async with conversation(config, hub, tmp_path, "hana") as rt:
        await rt.agent.text_turn("Hello! Mateus is coming over tonight.")
        first = raised_in(fake, "Hello! Mateus is coming over tonight.")
        assert test in first and call_mum not in first and exam not in first  # one a turn, the soonest due
        await rt.agent.text_turn("Mateus cooked dinner for us.")
        second = raised_in(fake, "Mateus cooked dinner for us.")
        assert call_mum in second and test not in second
        await rt.agent.text_turn("What a day.")
        assert raised_in(fake, "What a day.") == ""
    after = await statuses(hub, "hana")
    assert after == {"Remind me to call my mother tomorrow at six.": "raised",
                     "My driving exam is tomorrow at 10am.": "raised", "My exam is in two weeks.": "open"}
    # the conversation's end reflected on hana's memories: a card about the name she mentioned twice
    listed = await hub.call_data("memory_list", {"user_id": "hana", "limit": 100})
    cards = [m for m in listed["results"] if m["source"] == "reflection"]
    assert [c["content"].split(" (")[0] for c in cards] == ["About Mateus"]

    async with conversation(config, hub, tmp_path, "hana") as rt:  # the next conversation: not again
        await rt.agent.text_turn("Good morning.")
    assert raised_in(fake, "Good morning.") == ""


async def test_follow_ups_only_in_front_of_who_may_hear(fake: FakeOpenAI, config: PipelineConfig, hub: McpHub,
                                                        tmp_path: Path) -> None:
    two_days_ago = datetime.now(UTC) - timedelta(days=2)
    await said(hub, "omar", "Remind me to take my pills tomorrow at 8am.", two_days_ago)  # private: his alone
    await said(hub, "omar", "Our team party is tomorrow at 7pm.", two_days_ago, visibility="everyone")
    line = "Hi Tess, this is my friend Ivan."
    async with conversation(config, hub, tmp_path, "omar") as rt:
        rt.hooks.speakers.presence.heard(Speaker("ivan", "Ivan", "known", 0.9))
        await rt.agent.text_turn(line)
    context = context_for(fake, line)
    assert "Also present: Ivan" in context and "pills" not in context  # nor recalled: it is private
    assert "team party" in raised_in(fake, line)
    assert await statuses(hub, "omar") == {"Remind me to take my pills tomorrow at 8am.": "open",
                                           "Our team party is tomorrow at 7pm.": "raised"}


async def test_a_tool_lesson_reaches_the_next_conversation(fake: FakeOpenAI, config: PipelineConfig, hub: McpHub,
                                                           tmp_path: Path) -> None:
    for task, ok, outcome in [("look up the tide tables for Cascais", True, "high tide at 14:02"),
                              ("look up the tide in Cascais for Sunday", False, "the tide site timed out")]:
        await hub.call_data("tool_call_record", {"tool": "web_search", "task": task, "success": ok,
                                                 "outcome": outcome, "user_id": "ines"})
    async with conversation(config, hub, tmp_path, "ines") as rt:
        await rt.agent.text_turn("Hello, I am back from the beach.")
    # the conversation's end reflected: a lesson from the two calls, which the next turn is given
    line = "Can you look up the tide in Cascais again?"
    async with conversation(config, hub, tmp_path, "ines") as rt:
        await rt.agent.text_turn(line)
    context = context_for(fake, line)
    assert "Lesson on web_search from 2 calls (1 worked, 1 failed), " in context, context
    assert "Failed for: look up the tide in Cascais for Sunday (the tide site timed out)." in context


async def test_a_quiet_conversation_reflects_before_it_ends(fake: FakeOpenAI, config: PipelineConfig, hub: McpHub,
                                                            tmp_path: Path) -> None:
    quick = config.model_copy(update={"behavior": config.behavior.model_copy(update={"reflect_idle_s": 0.5})})
    async with conversation(quick, hub, tmp_path, "yuki") as rt:
        await rt.agent.text_turn("My friend Sofia lent me her bicycle.")
        await rt.agent.text_turn("I rode Sofia's bicycle to the lake.")
        # nobody speaks: the reflection comes while the conversation is still open
        for _ in range(120):
            listed = await hub.call_data("memory_list", {"user_id": "yuki", "limit": 100})
            cards = [m["content"].split(" (")[0] for m in listed["results"] if m["source"] == "reflection"]
            if cards:
                break
            await asyncio.sleep(0.25)
        assert cards == ["About Sofia"]
        assert rt.hooks._turns == {"yuki": 0}  # counted as reflected: the end has nothing left to do
