"""Reflection over stdio: entity cards without an LLM, insights with the fake one; sourced, as private as
their sources, re-derived or removed when a source changes, erased with their person."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.support import call, server_env, stdio_session

SAID = "2023-05-08T13:56:00+01:00"  # a Monday in Lisbon


def memory(user: str, text: str, when: str = SAID, **extra: Any) -> dict[str, Any]:
    return {"content": text, "user_id": user, "occurred_at": when, "infer": False, **extra}


async def derived(s: Any, user: str) -> list[dict[str, Any]]:
    listed = await call(s, "memory_list", {"user_id": user, "limit": 200})
    assert not listed.is_error, listed.text
    return [m for m in listed.data["results"] if m["source"] == "reflection"]


async def test_entity_cards_without_an_llm(tmp_path: Path) -> None:
    async with stdio_session("memory", server_env(tmp_path)) as s:
        res = await call(s, "memory_add_batch", {"items": [
            memory("alice", "Alice: I met Aurelio at the support group yesterday."),
            memory("alice", "Alice: Aurelio says everyone should read Braiding Sweetgrass.", "2023-05-09T10:00:00+01:00"),
            memory("alice", "Alice: Aurelio and I are going hiking next Saturday.", "2023-05-10T10:00:00+01:00"),
            memory("alice", "Alice: Lisbon was lovely in the rain."),
            memory("bob", "Bob: Aurelio sold me a bike."),
            memory("bob", "Bob: Aurelio fixed the bike too."),
        ]})
        assert not res.is_error, res.text
        met, says, hiking = (r["id"] for r in res.data["results"][:3])

        first = await call(s, "memory_reflect", {"user_id": "alice"})
        assert not first.is_error, first.text
        assert first.data["mode"] == "entity_cards"
        [card] = first.data["results"]  # Lisbon is mentioned once: nothing to gather
        assert card["event"] == "ADD" and card["kind"] == "entity_card"
        assert sorted(card["derived_from"]) == sorted([met, says, hiking])
        assert card["visibility"] == "private"  # built from private memories
        stored = (await call(s, "memory_get", {"memory_id": card["id"]})).data
        assert stored["content"].startswith("About Aurelio (mentioned in 3 memories, first on 8 May 2023, last on 10 May 2023)")
        assert "(that is: 7 May 2023)" in stored["content"]  # "yesterday", said on 8 May
        assert "(that is: 20 May 2023)" in stored["content"]  # "next Saturday", said on Wednesday 10 May
        assert "sold me a bike" not in stored["content"]  # bob's memories are bob's

        again = await call(s, "memory_reflect", {"user_id": "alice"})
        assert [e["event"] for e in again.data["results"]] == ["UNCHANGED"]
        assert [m["id"] for m in await derived(s, "alice")] == [card["id"]]  # updated, never duplicated

        found = await call(s, "memory_search", {"query": "What did Alice's friend from the support group recommend?",
                                                "user_id": "alice"})
        hit = next(m for m in found.data["results"] if m["id"] == card["id"])
        assert hit["source"] == "reflection" and sorted(hit["derived_from"]) == sorted([met, says, hiking])

        # as narrow as its narrowest source, whatever way the sources' visibility moves
        for mid in (met, says, hiking):
            assert not (await call(s, "memory_set_visibility", {"memory_id": mid, "visibility": "everyone"})).is_error
        assert (await call(s, "memory_get", {"memory_id": card["id"]})).data["visibility"] == "everyone"
        company = {"query": "Aurelio", "user_id": "alice", "present": ["alice", "bob"]}
        assert card["id"] in [m["id"] for m in (await call(s, "memory_search", company)).data["results"]]
        await call(s, "memory_set_visibility", {"memory_id": says, "visibility": "private"})
        assert (await call(s, "memory_get", {"memory_id": card["id"]})).data["visibility"] == "private"
        assert card["id"] not in [m["id"] for m in (await call(s, "memory_search", company)).data["results"]]

        # a source edited or deleted: the card is derived again from what is left, or goes
        await call(s, "memory_update", {"memory_id": hiking, "content": "Alice: We are going hiking next Saturday."})
        assert sorted((await call(s, "memory_get", {"memory_id": card["id"]})).data["derived_from"]) == sorted([met, says])
        await call(s, "memory_delete", {"memory_id": says})
        assert await derived(s, "alice") == []

        # forgetting a person leaves no insight behind
        await call(s, "memory_add", memory("alice", "Alice: Aurelio called again."))
        assert len(await derived(s, "alice")) == 0
        assert [e["event"] for e in (await call(s, "memory_reflect", {"user_id": "alice"})).data["results"]] == ["ADD"]
        bob = await call(s, "memory_reflect", {"user_id": "bob"})
        assert [e["event"] for e in bob.data["results"]] == ["ADD"]
        assert not (await call(s, "memory_forget_user", {"user_id": "alice"})).is_error
        assert (await call(s, "memory_list", {"user_id": "alice"})).data["total"] == 0
        assert len(await derived(s, "bob")) == 1  # another person's cards stay


def _reflecting(body: dict[str, Any]) -> Reply:
    """A scripted LLM that reflects: two insights, one citing a memory that was not given."""
    system = body["messages"][0]["content"]
    assert "You reflect on what a person told" in system, system[:200]
    return Reply(content=json.dumps({"insights": [
        {"text": "Carla trains for the Lisbon marathon with her sister Dora.", "sources": [1, 2]},
        {"text": "Carla is made up.", "sources": [99]},
    ]}))


async def test_insights_with_an_llm(tmp_path: Path) -> None:
    with FakeOpenAI(_reflecting) as llm:
        env = server_env(tmp_path, OPENAI_BASE_URL=llm.base_url, OPENAI_API_KEY="k", ALPHAAVATAR_LLM_MODEL="fake")
        async with stdio_session("memory", env) as s:
            res = await call(s, "memory_add_batch", {"items": [
                memory("carla", "I run every morning for the marathon.", present=["dora"]),
                memory("carla", "My sister Dora runs with me.", "2023-05-09T10:00:00+01:00", present=["dora"]),
            ]})
            ran, sister = (r["id"] for r in res.data["results"])
            out = await call(s, "memory_reflect", {"user_id": "carla"})
            assert not out.is_error, out.text
            assert out.data["mode"] == "llm"
            [insight] = out.data["results"]  # the one citing no given memory is dropped
            assert insight["kind"] == "insight" and sorted(insight["derived_from"]) == sorted([ran, sister])
            assert insight["visibility"] == "present"  # both were heard by Dora
            with_dora = await call(s, "memory_search", {"query": "marathon sister", "user_id": "carla",
                                                        "present": ["carla", "dora"]})
            assert insight["id"] in [m["id"] for m in with_dora.data["results"]]
            again = await call(s, "memory_reflect", {"user_id": "carla"})
            assert [e["event"] for e in again.data["results"]] == ["UNCHANGED"]
            # an insight is the LLM's reading of its sources: a changed source takes it away until the next reflection
            await call(s, "memory_update", {"memory_id": sister, "content": "My sister Dora cycles."})
            assert await derived(s, "carla") == []

    def broken(body: dict[str, Any]) -> Reply:
        return Reply(content="I would rather not.")

    with FakeOpenAI(broken) as llm:
        env = server_env(tmp_path / "b", OPENAI_BASE_URL=llm.base_url, OPENAI_API_KEY="k", ALPHAAVATAR_LLM_MODEL="fake")
        async with stdio_session("memory", env) as s:
            await call(s, "memory_add_batch", {"items": [memory("eve", "Eve: Zoltan plays chess."),
                                                         memory("eve", "Eve: Zoltan won again.")]})
            out = await call(s, "memory_reflect", {"user_id": "eve"})
            assert out.data["mode"] == "entity_cards" and "Entity cards stand in" in out.data["note"]
            assert [e["kind"] for e in out.data["results"]] == ["entity_card"]


async def test_tool_lessons_from_recorded_calls(tmp_path: Path) -> None:
    async with stdio_session("memory", server_env(tmp_path)) as s:
        async def record(user: str, tool: str, task: str, ok: bool, outcome: str, ms: float) -> str:
            res = await call(s, "tool_call_record", {"tool": tool, "task": task, "success": ok, "outcome": outcome,
                                                     "latency_ms": ms, "arguments": {"q": task}, "user_id": user})
            assert not res.is_error, res.text
            return str(res.data["results"][0]["id"])

        calls = [await record("alice", "web_search", "find trains to Porto", True, "3 trains", 800),
                 await record("alice", "web_search", "opening hours of the Gulbenkian", False, "timeout after 10 s", 10000),
                 await record("alice", "web_search", "weather in Lisbon", True, "sunny", 600)]
        await record("alice", "calendar_add", "dentist on Friday", True, "added", 90)  # once: nothing to learn yet
        await record("bob", "web_search", "bob's secret errand", True, "done", 500)
        await record("bob", "web_search", "bob's other errand", True, "done", 500)

        out = await call(s, "memory_reflect", {"user_id": "alice"})
        assert not out.is_error, out.text
        [lesson] = [e for e in out.data["results"] if e["kind"] == "tool_lesson"]
        assert lesson["event"] == "ADD" and sorted(lesson["derived_from"]) == sorted(calls)
        text = (await call(s, "memory_get", {"memory_id": lesson["id"]})).data["content"]
        assert text.startswith("Lesson on web_search from 3 calls (2 worked, 1 failed; median 800 ms)"), text
        assert "Worked for: weather in Lisbon; find trains to Porto." in text
        assert "Failed for: opening hours of the Gulbenkian (timeout after 10 s)." in text
        assert "errand" not in text  # bob's calls are bob's

        found = await call(s, "tool_experience_search", {"task": "look something up on the web", "user_id": "alice",
                                                         "tool": "web_search", "limit": 10})
        [taught] = [e for e in found.data["results"] if e["lesson"]]
        assert taught["id"] == lesson["id"] and taught["success"] is True and taught["lesson"] == text
        assert f"- {text}" in found.text
        assert [e["event"] for e in (await call(s, "memory_reflect", {"user_id": "alice"})).data["results"]] == ["UNCHANGED"]

        # no lesson outlives its calls: one deleted, it is counted again; fewer than two, it goes
        await call(s, "memory_delete", {"memory_id": calls[0]})
        again = (await call(s, "memory_get", {"memory_id": lesson["id"]})).data
        assert again["content"].startswith("Lesson on web_search from 2 calls (1 worked, 1 failed")
        assert sorted(again["derived_from"]) == sorted(calls[1:])
        await call(s, "memory_delete", {"memory_id": calls[1]})
        gone = await call(s, "memory_get", {"memory_id": lesson["id"]})
        assert gone.is_error
        bob = await call(s, "memory_reflect", {"user_id": "bob"})
        assert [e["kind"] for e in bob.data["results"]] == ["tool_lesson"]
        assert not (await call(s, "memory_forget_user", {"user_id": "bob"})).is_error
        left = await call(s, "tool_experience_search", {"task": "errand", "user_id": "bob"})
        assert left.data["results"] == []


async def test_the_avatars_own_knowledge_takes_only_what_was_shared(tmp_path: Path) -> None:
    async with stdio_session("memory", server_env(tmp_path)) as s:
        res = await call(s, "memory_add_batch", {"items": [
            memory("alice", "Alice: The Gulbenkian garden opens at ten.", visibility="everyone"),
            memory("bob", "Bob: The Gulbenkian has a new Monet room.", "2023-05-09T10:00:00+01:00", visibility="everyone"),
            memory("carol", "Carol: I cried in the Gulbenkian garden after the news.", visibility="private"),
            memory("alice", "Alice: Teodoro is my cousin.", visibility="everyone"),  # one person: not the avatar's
        ]})
        assert not res.is_error, res.text
        garden, monet = (r["id"] for r in res.data["results"][:2])
        refused = await call(s, "memory_reflect", {"avatar": True, "user_id": "alice"})
        assert refused.is_error and "leave user_id empty" in refused.text

        out = await call(s, "memory_reflect", {"avatar": True})
        assert not out.is_error, out.text
        assert out.data["user_id"] is None and "what people shared with everyone" in out.text
        [card] = out.data["results"]
        assert card["event"] == "ADD" and sorted(card["derived_from"]) == sorted([garden, monet])
        assert card["visibility"] == "everyone"
        text = (await call(s, "memory_get", {"memory_id": card["id"]})).data["content"]
        assert text.startswith("About Gulbenkian (mentioned in 2 memories by 2 people, first on 8 May 2023"), text
        assert "Monet" in text and "opens at ten" in text and "cried" not in text and "Teodoro" not in text
        found = await call(s, "memory_search", {"query": "When does the Gulbenkian open?", "user_id": "dora"})
        assert card["id"] in [m["id"] for m in found.data["results"]]  # the avatar's knowledge is everyone's
        again = await call(s, "memory_reflect", {"avatar": True})
        assert [e["event"] for e in again.data["results"]] == ["UNCHANGED"]

        # a source taken back from everyone leaves one person: the card goes
        await call(s, "memory_set_visibility", {"memory_id": monet, "visibility": "private"})
        assert (await call(s, "memory_get", {"memory_id": card["id"]})).is_error
        await call(s, "memory_set_visibility", {"memory_id": monet, "visibility": "everyone"})
        [card] = (await call(s, "memory_reflect", {"avatar": True})).data["results"]

        # forgetting alice erases what quotes her, its history (which held the quotes) too
        kept = await call(s, "memory_history", {"memory_id": card["id"]})
        assert "opens at ten" in kept.data["events"][0]["new"]
        assert not (await call(s, "memory_forget_user", {"user_id": "alice"})).is_error
        assert (await call(s, "memory_get", {"memory_id": card["id"]})).is_error
        erased = await call(s, "memory_history", {"memory_id": card["id"]})
        assert erased.is_error and "No history" in erased.text
        left = await call(s, "memory_search", {"query": "Gulbenkian garden opens at ten", "user_id": "dora"})
        assert all("opens at ten" not in m["content"] for m in left.data["results"])
