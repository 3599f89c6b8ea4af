"""Bad input is refused when it arrives, in words, and never poisons what is stored.

Stored free JSON (memory metadata, recorded tool arguments) is bounded below what the store can
read back; cursors are checked against the listing that made them; argument errors are
sentences. tests/test_fuzz.py covers every tool at random; these are the cases we know matter.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from mcp import ClientSession

from mcp_servers.core.bounds import MAX_BYTES, MAX_DEPTH
from mcp_servers.core.store.base import CollectionSpec, Item, Where
from mcp_servers.core.store.edge import EdgeStore
from tests.support import call, ok, server_env, stdio_session, unhelpful


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def _readable(tmp: Path, depth: int) -> bool:
    """Does a payload value nested `depth` deep survive write, scroll, retrieve and reopen in Qdrant Edge?"""
    spec = CollectionSpec(name="t", dim=2, tenant_fields=("user_id",))
    where = tmp / f"d{depth}"
    store = EdgeStore(where, spec)
    try:
        point = str(uuid.uuid4())
        store.upsert([Item(point, {"user_id": "u", "metadata": nested(depth)}, dense=[1.0, 0.0])])
        store.scroll(Where(equals={"user_id": "u"}), 5)
        store.retrieve([point])
        store.close()
        store = EdgeStore(where, spec)
        return len(store.scroll(None, 5)[0]) == 1
    except Exception:
        return False
    finally:
        try:
            store.close()
        except Exception:  # a shard that failed to open
            store._lock.release()


def test_edge_store_depth_limit(tmp_path: Path) -> None:
    """The bound keeps far below the depth at which Qdrant Edge stops reading its own payloads.

    Measured on qdrant-edge-py 0.9.0: a value nested 123 levels deep (124 with the payload) is
    written without complaint, after which reopening the shard fails ("failed to read WAL
    entry"); from 127 on even reads of the open shard fail ("recursion limit exceeded")."""
    lo, hi = MAX_DEPTH + 8, 200  # servers wrap a value in a few levels of their own
    assert _readable(tmp_path, lo), "the store no longer reads what the bound lets through"
    assert not _readable(tmp_path, hi), "the store reads deep payloads now: the bound could be raised"
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if _readable(tmp_path, mid) else (lo, mid)
    print(f"\nQdrant Edge reads payload values nested up to {lo} levels; the bound is {MAX_DEPTH}")
    assert hi > 3 * MAX_DEPTH


async def _count(s: Any, user: str) -> int:
    return sum([(await ok(s, "memory_list", {"user_id": user, **scope}))["total"]
                for scope in ({}, {"scope": "tool"})])


async def test_stored_json_is_bounded_at_write_time(tmp_path: Path) -> None:
    user = "nest-" + uuid.uuid4().hex[:6]
    async with stdio_session("memory", server_env(tmp_path)) as s:
        await ok(s, "memory_add", {"content": "deep but fine", "user_id": user, "metadata": nested(MAX_DEPTH)})
        await ok(s, "tool_call_record", {"tool": "t", "task": "deep args", "user_id": user,
                                         "arguments": nested(MAX_DEPTH - 1)})
        refused = [
            ("memory_add", {"content": "too deep", "user_id": user, "metadata": nested(MAX_DEPTH + 1)}, "32 levels"),
            ("memory_add", {"content": "too deep", "user_id": user, "metadata": nested(127)}, "flatten"),
            ("memory_add", {"content": "too big", "user_id": user, "metadata": {"blob": "x" * MAX_BYTES}}, "65,536"),
            ("tool_call_record", {"tool": "t", "user_id": user, "arguments": nested(MAX_DEPTH)}, "31 levels"),
            ("tool_call_record", {"tool": "t", "user_id": user, "arguments": {"b": "x" * (MAX_BYTES // 2)}}, "32,768"),
            ("memory_add_batch", {"items": [{"content": "fine", "user_id": user},
                                            {"content": "deep", "user_id": user, "metadata": nested(40)}]},
             "items[1].metadata"),
        ]
        before = await _count(s, user)
        for tool, args, hint in refused:
            r = await call(s, tool, args)
            assert r.is_error and hint in r.text, (tool, hint, r.text)
            assert unhelpful(r.text, tool, args) is None, r.text
        assert await _count(s, user) == before == 2  # nothing of the refused calls was written
        # what was accepted reads back, every way
        for tool, args in [("memory_list", {"user_id": user}), ("memory_list", {"user_id": user, "scope": "tool"}),
                           ("memory_search", {"query": "deep", "user_id": user}), ("memory_export", {"user_id": user}),
                           ("tool_experience_search", {"task": "deep args", "user_id": user})]:
            assert not (await call(s, tool, args)).is_error, tool
        # metadata merged by updates is bounded as a whole
        mid = (await ok(s, "memory_add", {"content": "to update", "user_id": user}))["results"][0]["id"]
        await ok(s, "memory_update", {"memory_id": mid, "metadata": {"a": "x" * 40_000}})
        r = await call(s, "memory_update", {"memory_id": mid, "metadata": {"b": "y" * 40_000}})
        assert r.is_error and "merged" in r.text and "65,536" in r.text, r.text
        assert set((await ok(s, "memory_get", {"memory_id": mid}))["metadata"]) == {"a"}


async def test_cursors_belong_to_the_listing_that_made_them(tmp_path: Path) -> None:
    async with stdio_session("memory", server_env(tmp_path)) as s:
        for i in range(5):
            await ok(s, "memory_add", {"content": f"note number {i} about tea", "user_id": "ann"})
            await ok(s, "memory_add", {"content": f"note number {i} about coffee", "user_id": "ben"})
        listed = await ok(s, "memory_list", {"user_id": "ann", "limit": 2})
        searched = await ok(s, "memory_search", {"query": "note", "user_id": "ann", "limit": 2})
        assert listed["next_cursor"] and searched["next_cursor"]
        first = await ok(s, "memory_list", {"user_id": "ann", "limit": 2, "cursor": ""})  # empty: the first page
        assert [m["id"] for m in first["results"]] == [m["id"] for m in listed["results"]]
        page2 = await ok(s, "memory_list", {"user_id": "ann", "limit": 2, "cursor": listed["next_cursor"]})
        assert not {m["id"] for m in page2["results"]} & {m["id"] for m in listed["results"]}
        wrong = [
            ("memory_list", {"user_id": "ann", "cursor": "garbage"}, "not one memory_list returned"),
            ("memory_list", {"user_id": "ann", "cursor": searched["next_cursor"]}, "not one memory_list returned"),
            ("memory_list", {"user_id": "ben", "cursor": listed["next_cursor"]}, "different listing"),
            ("memory_list", {"user_id": "ann", "scope": "tool", "cursor": listed["next_cursor"]}, "different listing"),
            ("memory_search", {"query": "note", "user_id": "ann", "cursor": listed["next_cursor"]}, "not one"),
            ("memory_search", {"query": "tea", "user_id": "ann", "limit": 2, "cursor": searched["next_cursor"]},
             "different listing"),
        ]
        for tool, args, hint in wrong:
            r = await call(s, tool, args)
            assert r.is_error and hint in r.text, (tool, args, r.text)
            assert unhelpful(r.text, tool, args) is None, r.text


@pytest.mark.parametrize(("server", "tool", "args", "words"), [
    ("character", "character_state", {"state": 5}, "state: input should be a valid string (got 5)"),
    ("character", "character_state", {"state": "dancing"}, "Choose one of: idle"),
    ("character", "character_gaze", {"x": "left"}, "y is required"),
    ("character", "character_speak", {"text": "hi", "audio": "UklGRgAAAABXQVZF"}, "audio"),
    ("memory", "memory_add_batch", {"items": [{"content": 5}]}, "items[0].content: input should be a valid string"),
])
async def test_argument_errors_are_sentences(server: str, tool: str, args: dict[str, Any], words: str,
                                             scratch_stdio: Callable[[str], Awaitable[ClientSession]]) -> None:
    r = await call(await scratch_stdio(server), tool, args)  # refused: the shared server is left as it was
    assert r.is_error and words in r.text, r.text
    assert unhelpful(r.text, tool, args) is None, r.text
    assert "validation error" not in r.text and "pydantic" not in r.text


async def test_a_crash_answers_what_failed_and_logs_the_cause(caplog: pytest.LogCaptureFixture) -> None:
    """Our Server class in-process: a tool with a bug answers in words and the traceback is logged."""
    from mcp import Client

    from mcp_servers.core.logs import RequestIdMiddleware
    from mcp_servers.core.server import Server

    server = Server("crash-test", middleware=[RequestIdMiddleware()])

    @server.tool()
    def ratio(a: int, b: int) -> float:
        """a / b"""
        return a / b

    async with Client(server) as client:
        r = await client.call_tool("ratio", {"a": 1, "b": 0})
        text = r.content[0].text  # type: ignore[union-attr]
        assert r.is_error and "the server failed while running this call" in text and "request id" in text, text
        assert unhelpful(text, "ratio") is None and "division" not in text, text
        bad = await client.call_tool("ratio", {"a": "one"})
        text = bad.content[0].text  # type: ignore[union-attr]
        assert "a: input should be a valid integer" in text and "b is required" in text, text
    crash = [rec for rec in caplog.records if rec.exc_info and rec.levelname == "ERROR"]
    assert crash and "ZeroDivisionError" in caplog.text
