"""The memory server through a real MCP client, over stdio and streamable HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import ClientSession
from mcp.shared.exceptions import MCPError

from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.support import ALPHAAVATAR, call, http_server, http_session, ok, server_env, stdio_session


async def count_all(s: ClientSession, user: str) -> int:
    r = await call(s, "memory_list", {"user_id": user, "limit": 200})
    assert not r.is_error, r.text
    return int(r.data["total"])


@pytest.mark.parametrize("scope", ["user", "session", "avatar", "tool"])
async def test_round_trip_per_scope(tmp_path: Path, scope: str) -> None:
    async with stdio_session("memory", server_env(tmp_path)) as s:
        user = None if scope == "avatar" else "ursula"
        args: dict[str, Any] = {"content": "Ursula grows tomatoes on her balcony", "scope": scope,
                                "session_id": "s-1", "occurred_at": "2024-03-01T10:00:00Z"}
        if user:
            args["user_id"] = user
        added = await call(s, "memory_add", args)
        assert not added.is_error, added.text
        mid = added.data["results"][0]["id"]
        assert added.data["results"][0]["event"] == "ADD"
        again = await call(s, "memory_add", args)
        assert again.data["results"][0] == {**again.data["results"][0], "id": mid, "event": "DUPLICATE"}

        found = await call(s, "memory_search", {"query": "what vegetables does she grow", "scope": scope,
                                                **({"user_id": user} if user else {})})
        assert [h["id"] for h in found.data["results"]] == [mid]
        assert found.data["results"][0]["occurred_at"].startswith("2024-03-01T10:00:00")
        assert found.data["results"][0]["scope"] == scope

        upd = await call(s, "memory_update", {"memory_id": mid, "content": "Ursula grows chillies on her balcony"})
        assert upd.data["content"] == "Ursula grows chillies on her balcony"
        hist = await call(s, "memory_history", {"memory_id": mid})
        assert [e["event"] for e in hist.data["events"]] == ["ADD", "UPDATE"]
        assert hist.data["events"][1]["old"] == "Ursula grows tomatoes on her balcony"
        deleted = await call(s, "memory_delete", {"memory_id": mid})
        assert deleted.data == {"id": mid, "deleted": True}
        gone = await call(s, "memory_get", {"memory_id": mid})
        assert gone.is_error and "No memory" in gone.text
        hist = await call(s, "memory_history", {"memory_id": mid})
        assert [e["event"] for e in hist.data["events"]] == ["ADD", "UPDATE", "DELETE"]

        if user:
            await call(s, "memory_add", {**args, "content": "Ursula's sister lives in Oslo"})
            forgot = await call(s, "memory_forget_user", {"user_id": user})
            assert forgot.data["memories_deleted"] == 1
            assert await count_all(s, user) == 0
            hist = await call(s, "memory_history", {"memory_id": mid})
            assert hist.is_error


async def test_reassign_moves_every_scope_with_history(tmp_path: Path) -> None:
    async with stdio_session("memory", server_env(tmp_path)) as s:
        tmp = {"user_id": "provisional-1", "session_id": "s-9"}
        fact = await call(s, "memory_add", {**tmp, "content": "My cat is called Pixel"})
        mid = fact.data["results"][0]["id"]
        await call(s, "memory_update", {"memory_id": mid, "content": "My cat is called Pixel, she is grey"})
        await call(s, "memory_add", {**tmp, "content": "in this chat: we talked about cats", "scope": "session"})
        await call(s, "tool_call_record", {**tmp, "tool": "web_search", "arguments": {"q": "cat food"},
                                           "outcome": "ok", "task": "find cat food"})
        await call(s, "memory_add", {"user_id": "alice", "content": "Alice lives in Lyon"})
        same = await call(s, "memory_reassign_user", {"user_id": "alice", "into_user_id": "alice"})
        assert same.is_error and "same user" in same.text

        listed = await count_all(s, "provisional-1")
        moved = await call(s, "memory_reassign_user", {"user_id": "provisional-1", "into_user_id": "alice"})
        assert not moved.is_error, moved.text
        assert moved.data == {"user_id": "provisional-1", "into_user_id": "alice", "memories_moved": 3}
        assert await count_all(s, "provisional-1") == 0
        assert await count_all(s, "alice") == 1 + listed
        found = await call(s, "memory_search", {"query": "what is my cat called", "user_id": "alice"})
        assert found.data["results"][0]["id"] == mid and found.data["results"][0]["user_id"] == "alice"
        hist = await call(s, "memory_history", {"memory_id": mid})
        assert [e["event"] for e in hist.data["events"]] == ["ADD", "UPDATE", "REASSIGN"]
        assert (await call(s, "tool_experience_search", {"task": "cat food", "user_id": "alice"})).data["results"]
        again = await call(s, "memory_reassign_user", {"user_id": "provisional-1", "into_user_id": "alice"})
        assert again.data["memories_moved"] == 0
        # the history moved with the memories: forgetting alice erases it
        await call(s, "memory_forget_user", {"user_id": "alice"})
        assert (await call(s, "memory_history", {"memory_id": mid})).is_error


async def test_isolation_search_time_filters_pagination_export(tmp_path: Path) -> None:
    async with stdio_session("memory", server_env(tmp_path)) as s:
        items = [{"content": f"Alice note {i}: she visited museum number {i}", "user_id": "alice",
                  "session_id": f"s{i // 5}", "occurred_at": f"2023-0{1 + i // 5}-1{i % 5}T12:00:00Z"}
                 for i in range(15)]
        items.append({"content": "Bob keeps bees on his roof", "user_id": "bob"})
        batch = await call(s, "memory_add_batch", {"items": items})
        assert [e["event"] for e in batch.data["results"]] == ["ADD"] * 16

        leak = await call(s, "memory_search", {"query": "bees on the roof", "user_id": "alice", "limit": 50})
        assert all("bees" not in h["content"] for h in leak.data["results"])
        assert len(leak.data["results"]) == 15

        spring = await call(s, "memory_search", {"query": "museum", "user_id": "alice", "since": "2023-03-01T00:00:00Z"})
        assert spring.data["results"] and all(h["occurred_at"] >= "2023-03" for h in spring.data["results"])
        february = await call(s, "memory_list", {"user_id": "alice", "since": "2023-02-01T00:00:00Z",
                                                 "until": "2023-02-28T23:59:59Z"})
        assert february.data["total"] == 5 and {h["occurred_at"][:7] for h in february.data["results"]} == {"2023-02"}
        in_session = await call(s, "memory_search", {"query": "museum", "user_id": "alice", "session_id": "s1"})
        assert {h["session_id"] for h in in_session.data["results"]} == {"s1"}

        seen: list[str] = []
        cursor = None
        while True:
            page = await call(s, "memory_search", {"query": "museum visit", "user_id": "alice", "limit": 4,
                                                   **({"cursor": cursor} if cursor else {})})
            seen += [h["id"] for h in page.data["results"]]
            cursor = page.data["next_cursor"]
            if not cursor:
                break
        assert len(seen) == len(set(seen)) == 15

        listed: list[str] = []
        times: list[str] = []
        cursor = None
        while True:
            page = await call(s, "memory_list", {"user_id": "alice", "limit": 6, **({"cursor": cursor} if cursor else {})})
            listed += [h["id"] for h in page.data["results"]]
            times += [h["occurred_at"] for h in page.data["results"]]
            cursor = page.data["next_cursor"]
            if not cursor:
                break
        assert sorted(listed) == sorted(seen)
        assert times == sorted(times, reverse=True)  # newest first, across pages

        export = await call(s, "memory_export", {"user_id": "alice", "format": "json"})
        assert export.data["count"] == 15
        assert len(json.loads(Path(export.data["path"]).read_text())) == 15
        whole = await s.read_resource(export.data["uri"])
        assert whole.contents[0].text == Path(export.data["path"]).read_text()
        md = await call(s, "memory_export", {"user_id": "alice"})
        assert "museum number 14" in md.data["content"]

        res = await s.read_resource("memory://users/bob/memories")
        assert "bees" in res.contents[0].text and "museum" not in res.contents[0].text
        prompt = await s.get_prompt("recall", {"user_id": "alice", "topic": "museums"})
        assert "museum" in prompt.messages[0].content.text

        forgot = await call(s, "memory_forget_user", {"user_id": "alice"})
        assert forgot.data["exports_deleted"] == 2
        assert not Path(export.data["path"]).exists()
        assert await count_all(s, "bob") == 1


async def test_tool_experience(tmp_path: Path) -> None:
    async with stdio_session("memory", server_env(tmp_path)) as s:
        await call(s, "tool_call_record", {"tool": "web_search", "arguments": {"query": "Paris weather"},
                                           "task": "find tomorrow's weather in Paris", "outcome": "14°C, rain",
                                           "latency_ms": 420.0})
        await call(s, "tool_call_record", {"tool": "calendar_add", "arguments": {"title": "dentist"},
                                           "task": "book a dentist appointment", "outcome": "401 unauthorized",
                                           "success": False})
        found = await call(s, "tool_experience_search", {"task": "what will the weather be in Lyon"})
        assert found.data["results"][0]["tool"] == "web_search"
        assert found.data["results"][0]["arguments"] == {"query": "Paris weather"}
        failed = await call(s, "tool_experience_search", {"task": "schedule an appointment", "tool": "calendar_add"})
        assert [r["success"] for r in failed.data["results"]] == [False]
        plain = await call(s, "memory_search", {"query": "weather in Paris"})
        assert plain.data["results"] == []  # tool experience stays out of ordinary recall


async def test_bad_input_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    async with stdio_session("memory", server_env(tmp_path)) as s:
        await call(s, "memory_add", {"content": "a first memory", "user_id": "carol"})
        bad_calls: list[tuple[str, dict[str, Any], str]] = [
            ("memory_add", {"content": "   ", "user_id": "carol"}, "empty"),
            ("memory_add", {"content": "x" * 25_000, "user_id": "carol"}, "at most 20000"),
            ("memory_add", {"user_id": "carol"}, "exactly one"),
            ("memory_add", {"content": 42, "user_id": "carol"}, "string"),
            ("memory_add", {"content": "hi", "scope": "galaxy"}, "scope"),
            ("memory_add", {"content": "hi", "scope": "avatar", "user_id": "carol"}, "belong to no user"),
            ("memory_add", {"content": "hi", "scope": "session", "user_id": "carol"}, "session_id"),
            ("memory_add", {"content": "hi", "occurred_at": "last tuesday"}, "occurred_at"),
            ("memory_add_batch", {"items": [{"content": "fine", "user_id": "carol"}, {"content": ""}]}, "Item 1"),
            ("memory_search", {"query": ""}, "query"),
            ("memory_search", {"query": "x", "limit": 5000}, "limit"),
            ("memory_search", {"query": "x", "since": "2024-01-02T00:00:00Z", "until": "2023-01-01T00:00:00Z"},
             "after 'until'"),
            ("memory_search", {"query": "x", "cursor": "garbage!"}, "cursor"),
            ("memory_get", {"memory_id": "not-an-id"}, "not a memory id"),
            ("memory_get", {"memory_id": "00000000-0000-4000-8000-000000000000"}, "No memory"),
            ("memory_update", {"memory_id": "00000000-0000-4000-8000-000000000000", "content": "x"}, "No memory"),
            ("memory_delete", {"memory_id": "00000000-0000-4000-8000-000000000000"}, "No memory"),
            ("memory_history", {"memory_id": "00000000-0000-4000-8000-000000000000"}, "No history"),
            ("memory_export", {"format": "pdf"}, "format"),
        ]
        for tool, args, hint in bad_calls:
            r = await call(s, tool, args)
            assert r.is_error, (tool, args, r.text)
            assert hint.lower() in r.text.lower(), (tool, hint, r.text)
        assert await count_all(s, "carol") == 1
        assert await count_all(s, "default") == 0
        ok = await call(s, "memory_search", {"query": "first", "user_id": "carol"})
        assert len(ok.data["results"]) == 1  # still alive and serving


@pytest.mark.slow  # the default run kills memory under acknowledged writes in tests/test_durability.py (stdio, up)
async def test_persistence_across_restart_and_kill_9(tmp_path: Path) -> None:
    env = server_env(tmp_path)
    async with stdio_session("memory", env) as s:
        for i in range(5):
            await call(s, "memory_add", {"content": f"persisted fact {i}", "user_id": "dana"})
    async with stdio_session("memory", env) as s:
        assert await count_all(s, "dana") == 5

    # crash: kill -9 the HTTP server while a client streams acknowledged adds
    acked: list[str] = []
    port_env = dict(env)
    with http_server(["serve", "memory", "--transport", "http"], port_env) as base:
        pid = int(subprocess.check_output(["pgrep", "-f", f"serve memory --transport http --port {base.rsplit(':', 1)[1]}"],
                                          text=True).split()[0])

        async def stream() -> None:
            async with http_session(f"{base}/mcp") as s:
                for i in range(10_000):
                    r = await call(s, "memory_add", {"content": f"streamed fact number {i}", "user_id": "erin"})
                    if r.is_error:
                        return
                    acked.append(r.data["results"][0]["id"])

        task = asyncio.create_task(stream())
        while len(acked) < 40:
            await asyncio.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(BaseException):  # noqa: B017 - the connection dies with the server
            await asyncio.wait_for(task, 30)
    async with stdio_session("memory", env) as s:
        assert await count_all(s, "dana") == 5
        present: set[str] = set()
        cursor = None
        while True:
            page = await call(s, "memory_list", {"user_id": "erin", "limit": 200, **({"cursor": cursor} if cursor else {})})
            present |= {h["id"] for h in page.data["results"]}
            cursor = page.data["next_cursor"]
            if not cursor:
                break
        assert set(acked) <= present, f"{len(set(acked) - present)} acknowledged memories lost"


async def test_second_process_gets_a_clear_error(tmp_path: Path) -> None:
    env = server_env(tmp_path)
    with http_server(["serve", "memory", "--transport", "http"], env) as base:
        proc = subprocess.run([ALPHAAVATAR, "call", "memory", "memory_search", '{"query": "x"}'], env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode != 0
        assert "in use by process" in proc.stderr and base in proc.stderr, proc.stderr[-2000:]


async def test_http_auth_user_scoped_tokens_and_rebinding(tmp_path: Path) -> None:
    env = server_env(tmp_path, ALPHAAVATAR_TOKEN="owner-secret",
                     ALPHAAVATAR_USER_TOKENS=json.dumps({"alice-token": "alice", "bob-token": "bob"}))
    with http_server(["up"], env) as base:
        url = f"{base}/memory/mcp"
        assert httpx.get(f"{base}/healthz").json()["status"] == "ok"
        assert httpx.post(url, json={}).status_code == 401
        assert httpx.post(url, json={}, headers={"Authorization": "Bearer wrong"}).status_code == 401
        rebind = httpx.post(url, json={}, headers={"Authorization": "Bearer owner-secret", "Host": "evil.example:80"})
        assert rebind.status_code in (403, 421)
        async with http_session(url, "alice-token") as alice, http_session(url, "bob-token") as bob:
            a = await call(alice, "memory_add", {"content": "Alice's locker code is 4711"})
            assert a.data["results"][0]["event"] == "ADD"
            await call(bob, "memory_add", {"content": "Bob's locker code is 1234"})
            mine = await call(alice, "memory_search", {"query": "locker code"})
            assert [h["content"] for h in mine.data["results"]] == ["Alice's locker code is 4711"]
            assert mine.data["results"][0]["user_id"] == "alice"
            spy = await call(alice, "memory_search", {"query": "locker code", "user_id": "bob"})
            assert spy.is_error and "scoped to user 'alice'" in spy.text
            write = await call(alice, "memory_add", {"content": "x", "user_id": "bob"})
            assert write.is_error
            shared = await call(alice, "memory_add", {"content": "house rule", "scope": "avatar"})
            assert shared.is_error and "cannot write avatar-wide" in shared.text
            bob_id = (await call(bob, "memory_search", {"query": "locker"})).data["results"][0]["id"]
            for tool, args in [("memory_get", {}), ("memory_delete", {}), ("memory_history", {}),
                               ("memory_update", {"content": "hacked"})]:
                r = await call(alice, tool, {"memory_id": bob_id, **args})
                assert r.is_error, tool
            forget = await call(alice, "memory_forget_user", {"user_id": "bob"})
            assert forget.is_error
            for into in ("alice", "bob"):  # moving memories between users is the owner's, even one's own
                steal = await call(alice, "memory_reassign_user", {"user_id": "bob" if into == "alice" else "alice",
                                                                   "into_user_id": into})
                assert steal.is_error and "Only the owner" in steal.text
            # the resource and the prompt are scoped like the tools
            with pytest.raises(MCPError, match="scoped to user 'alice'"):
                await alice.read_resource("memory://users/bob/memories")
            with pytest.raises(MCPError, match="scoped to user 'alice'"):
                await alice.get_prompt("recall", {"user_id": "bob", "topic": "locker code"})
            own = await alice.read_resource("memory://users/alice/memories")
            assert "4711" in own.contents[0].text and "1234" not in own.contents[0].text
        async with http_session(url, "owner-secret") as owner:
            both = await call(owner, "memory_search", {"query": "locker code", "user_id": "bob"})
            assert [h["content"] for h in both.data["results"]] == ["Bob's locker code is 1234"]


def test_beyond_loopback_needs_a_token(tmp_path: Path) -> None:
    proc = subprocess.run([ALPHAAVATAR, "serve", "memory", "--transport", "http", "--host", "0.0.0.0", "--port", "1"],
                          env=server_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "ALPHAAVATAR_TOKEN" in proc.stderr


async def test_sse_transport(tmp_path: Path) -> None:
    from mcp.client.sse import sse_client

    with http_server(["serve", "memory", "--transport", "sse"], server_env(tmp_path)) as base:
        async with sse_client(f"{base}/sse") as (read, write), ClientSession(read, write) as s:
            await s.initialize()
            await call(s, "memory_add", {"content": "sent over SSE", "user_id": "sse"})
            r = await call(s, "memory_search", {"query": "SSE", "user_id": "sse"})
            assert r.data["results"][0]["content"] == "sent over SSE"


def _llm(body: dict[str, Any]) -> Reply:
    """A scripted LLM: mem0's fact-extraction prompt, then its reconciliation prompt."""
    system = body["messages"][0]["content"]
    user = body["messages"][-1]["content"]
    if "Personal Information Organizer" in system:
        facts = []
        if "Paris" in user:
            facts = ["Lives in Paris", "Works as a baker"]
        if "Berlin" in user:
            facts = ["Lives in Berlin"]
        return Reply(content=json.dumps({"facts": facts}))
    if "Lives in Berlin" in user and "Lives in Paris" in user:
        old_id = json.loads(user.split("```")[1].strip().replace("'", '"'))
        paris = next(m["id"] for m in old_id if m["text"] == "Lives in Paris")
        return Reply(content=json.dumps({"memory": [
            {"id": paris, "text": "Lives in Berlin", "event": "UPDATE", "old_memory": "Lives in Paris"}]}))
    facts = json.loads(user.split("```")[-2].strip().replace("'", '"')) if "```" in user else []
    return Reply(content=json.dumps({"memory": [{"id": str(i + 100), "text": f, "event": "ADD"} for i, f in enumerate(facts)]}))


async def test_llm_extracts_facts_and_a_contradiction_updates(tmp_path: Path) -> None:
    with FakeOpenAI(_llm) as llm:
        env = server_env(tmp_path, OPENAI_BASE_URL=llm.base_url, OPENAI_API_KEY="test-key",
                         ALPHAAVATAR_LLM_MODEL="fake-model")
        async with stdio_session("memory", env) as s:
            first = await call(s, "memory_add", {"user_id": "fritz", "messages": [
                {"role": "user", "content": "Hi! I live in Paris and I bake bread for a living."},
                {"role": "assistant", "content": "Lovely, a baker in Paris!"}]})
            assert first.data["mode"] == "extracted"
            assert sorted(e["content"] for e in first.data["results"]) == ["Lives in Paris", "Works as a baker"]
            second = await call(s, "memory_add", {"user_id": "fritz", "content": "I moved to Berlin last month."})
            assert [(e["event"], e["content"], e["previous"]) for e in second.data["results"]] == [
                ("UPDATE", "Lives in Berlin", "Lives in Paris")]
            listed = await call(s, "memory_list", {"user_id": "fritz"})
            assert sorted(h["content"] for h in listed.data["results"]) == ["Lives in Berlin", "Works as a baker"]
            verbatim = await call(s, "memory_add", {"user_id": "fritz", "content": "keep me as is", "infer": False})
            assert verbatim.data["mode"] == "verbatim"
        assert all(r["model"] == "fake-model" for r in llm.requests)

    def broken(body: dict[str, Any]) -> Reply:
        return Reply(content="Noted.")  # not JSON: the words must still be kept

    with FakeOpenAI(broken) as llm:
        env = server_env(tmp_path / "b", OPENAI_BASE_URL=llm.base_url, ALPHAAVATAR_LLM_MODEL="fake-model")
        async with stdio_session("memory", env) as s:
            r = await call(s, "memory_add", {"user_id": "gus", "content": "My dog is called Rexomir"})
            assert r.data["results"][0]["event"] == "ADD" and "stored verbatim" in r.data["note"]
            found = await call(s, "memory_search", {"query": "dog's name", "user_id": "gus"})
            assert found.data["results"][0]["content"] == "My dog is called Rexomir"


async def test_openai_compatible_embeddings(tmp_path: Path) -> None:
    with FakeOpenAI() as api:
        env = server_env(tmp_path, ALPHAAVATAR_EMBEDDER="openai", ALPHAAVATAR_EMBEDDING_MODEL="fake-embed",
                         ALPHAAVATAR_EMBEDDING_DIM="64", OPENAI_BASE_URL=api.base_url, OPENAI_API_KEY="k")
        async with stdio_session("memory", env) as s:
            await call(s, "memory_add_batch", {"items": [
                {"content": "zebra zebra zoo", "user_id": "h"}, {"content": "apple pie recipe", "user_id": "h"}]})
            r = await call(s, "memory_search", {"query": "zebra zoo", "user_id": "h", "limit": 1})
            assert r.data["results"][0]["content"] == "zebra zebra zoo"
        embedded = [req for req in api.requests if req.get("model") == "fake-embed"]
        assert len(embedded) >= 2


async def test_json_looking_text_is_kept_as_text(tmp_path: Path) -> None:
    async with stdio_session("memory", server_env(tmp_path)) as s:
        r = await call(s, "memory_add", {"content": '{"wifi": "hunter2"}', "user_id": "ivy"})
        assert not r.is_error, r.text
        assert r.data["results"][0]["content"] == '{"wifi": "hunter2"}'
        t = await call(s, "tool_call_record", {"tool": "http_get", "outcome": '{"status": 200}', "task": "ping"})
        assert not t.is_error, t.text


async def test_list_is_newest_first_and_pages_through_memories_of_the_same_time(tmp_path: Path) -> None:
    """A memory just added heads the list; memories said at one moment page over several pages, each once."""
    async with stdio_session("memory", server_env(tmp_path)) as s:
        same = [{"content": f"Same moment note {i}", "user_id": "ivy", "occurred_at": f"2024-05-0{1 + i % 2}T10:00:00Z",
                 "infer": False} for i in range(13)]  # two moments, 7 and 6 memories each
        await ok(s, "memory_add_batch", {"items": [*same, {"content": "An older note", "user_id": "ivy",
                                                           "occurred_at": "2020-01-01T00:00:00Z", "infer": False}]})
        await ok(s, "memory_add", {"content": "The newest note", "user_id": "ivy", "infer": False})
        pages, cursor = [], None
        while True:
            page = await ok(s, "memory_list", {"user_id": "ivy", "limit": 3, **({"cursor": cursor} if cursor else {})})
            pages.append([m["content"] for m in page["results"]])
            if not (cursor := page["next_cursor"]):
                break
        shown = [c for p in pages for c in p]
        assert shown[0] == "The newest note" and shown[-1] == "An older note"
        assert sorted(shown[1:-1]) == sorted(m["content"] for m in same), pages  # each once
        assert all(c.endswith(("1", "3", "5", "7", "9", "11")) for c in shown[1:7]), pages  # the later moment first
