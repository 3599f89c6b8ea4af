"""Who may hear a memory (docs/visibility.md), through a real MCP session with the memory server."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from mcp import ClientSession

from mcp_servers.core.settings import Settings
from mcp_servers.core.store import CollectionSpec, Item, open_store
from mcp_servers.core.store.aio import off_loop
from mcp_servers.memory.service import memories_spec
from tests.support import call, http_server, http_session, ok, server_env, stdio_session


async def found(s: ClientSession, present: list[str] | None, tool: str = "memory_search") -> set[str]:
    """The contents alice's memories (and the avatar's) `present` may hear, by search or list."""
    args: dict[str, Any] = {"user_id": "alice", "limit": 50}
    if tool == "memory_search":
        args["query"] = "zebra"
    if present is not None:
        args["present"] = present
    data = await ok(s, tool, args)
    if tool == "memory_list":
        assert data["total"] == len(data["results"])
    return {m["content"] for m in data["results"]}


SAID = {
    "alone": ({}, "private", []),
    "with bob": ({"present": ["alice", "bob"]}, "present", ["alice", "bob"]),
    "with carol": ({"present": ["carol", "alice", "carol"]}, "present", ["alice", "carol"]),
    "for all": ({"visibility": "everyone"}, "everyone", []),
    "kept private before bob": ({"present": ["alice", "bob"], "visibility": "private"}, "private", ["alice", "bob"]),
}


async def test_the_audience_filter_keeps_only_what_everyone_present_may_hear(tmp_path: Path) -> None:
    async with stdio_session("memory", server_env(tmp_path)) as s:
        for words, (extra, visibility, heard_by) in SAID.items():
            added = await ok(s, "memory_add", {"content": f"zebra {words}", "user_id": "alice", **extra})
            got = await ok(s, "memory_get", {"memory_id": added["results"][0]["id"]})
            assert (got["visibility"], got["heard_by"]) == (visibility, heard_by), words
        batch = await ok(s, "memory_add_batch", {"items": [
            {"content": "zebra batch with bob", "user_id": "alice", "present": ["bob"]},
            {"content": "zebra avatar knowledge", "scope": "avatar"}]})
        batch_ids = [e["id"] for e in batch["results"]]
        assert [(await ok(s, "memory_get", {"memory_id": i}))["visibility"] for i in batch_ids] == ["present", "everyone"]
        await ok(s, "memory_add", {"content": "zebra bob's own", "user_id": "bob", "visibility": "everyone"})

        everything = {f"zebra {w}" for w in SAID} | {"zebra batch with bob", "zebra avatar knowledge"}
        public = {"zebra for all", "zebra avatar knowledge"}
        cases: list[tuple[list[str] | None, set[str]]] = [
            (None, everything),  # no audience filter
            ([], everything),
            (["alice"], everything),  # alone with the avatar: all of her own
            (["alice", "bob"], public | {"zebra with bob", "zebra batch with bob"}),
            (["bob"], public | {"zebra with bob", "zebra batch with bob"}),  # she left; bob heard these
            (["alice", "carol"], public | {"zebra with carol"}),
            (["alice", "bob", "carol"], public),  # no memory was said in front of both
            (["alice", "someone"], public),  # an unknown person gets nothing but what is for everyone
            (["alice", "bob", "someone"], public),
        ]
        for tool in ("memory_search", "memory_list"):
            for present, expected in cases:
                assert await found(s, present, tool) == expected, (tool, present)

        refused = await call(s, "memory_add", {"content": "house rule", "scope": "avatar", "visibility": "private"})
        assert refused.is_error and "for everyone" in refused.text
        bad = await call(s, "memory_add_batch", {"items": [
            {"content": "zebra fine", "user_id": "alice"},
            {"content": "zebra rule", "scope": "avatar", "visibility": "present"}]})
        assert bad.is_error and "Item 1" in bad.text
        assert "zebra fine" not in await found(s, None)  # validated first: nothing written
        empty = await call(s, "memory_search", {"query": "zebra", "present": [""]})
        assert empty.is_error


async def test_its_person_changes_who_may_hear_a_memory(tmp_path: Path) -> None:
    async with stdio_session("memory", server_env(tmp_path)) as s:
        mid = (await ok(s, "memory_add", {"content": "zebra alice's surprise party", "user_id": "alice"}))["results"][0]["id"]
        assert await found(s, ["alice", "bob"]) == set()
        opened = await ok(s, "memory_set_visibility", {"memory_id": mid, "visibility": "everyone"})
        assert opened["visibility"] == "everyone" and opened["content"] == "zebra alice's surprise party"
        assert await found(s, ["alice", "bob"]) == {"zebra alice's surprise party"}
        await ok(s, "memory_set_visibility", {"memory_id": mid, "visibility": "private"})
        assert await found(s, ["alice", "bob"]) == set()
        assert await found(s, ["alice"]) == {"zebra alice's surprise party"}
        history = await ok(s, "memory_history", {"memory_id": mid})
        assert [(e["event"], e["old"], e["new"]) for e in history["events"]] == [
            ("ADD", None, "zebra alice's surprise party"), ("VISIBILITY", "private", "everyone"),
            ("VISIBILITY", "everyone", "private")]
        shared = (await ok(s, "memory_add", {"content": "zebra rule", "scope": "avatar"}))["results"][0]["id"]
        refused = await call(s, "memory_set_visibility", {"memory_id": shared, "visibility": "private"})
        assert refused.is_error and "for everyone" in refused.text
        missing = await call(s, "memory_set_visibility", {"memory_id": str(uuid.uuid4()), "visibility": "everyone"})
        assert missing.is_error and "No memory" in missing.text
        wrong = await call(s, "memory_set_visibility", {"memory_id": mid, "visibility": "friends"})
        assert wrong.is_error


async def test_a_user_cannot_change_who_hears_another_users_memory(tmp_path: Path) -> None:
    env = server_env(tmp_path, ALPHAAVATAR_TOKEN="owner-secret",
                     ALPHAAVATAR_USER_TOKENS=json.dumps({"alice-token": "alice", "bob-token": "bob"}))
    with http_server(["serve", "memory", "--transport", "http"], env) as base:
        url = f"{base}/mcp"
        async with http_session(url, "alice-token") as alice, http_session(url, "bob-token") as bob, \
                http_session(url, "owner-secret") as owner:
            mid = (await ok(alice, "memory_add", {"content": "zebra alice's diary"}))["results"][0]["id"]
            stolen = await call(bob, "memory_set_visibility", {"memory_id": mid, "visibility": "everyone"})
            assert stolen.is_error and "No memory" in stolen.text
            assert (await ok(alice, "memory_get", {"memory_id": mid}))["visibility"] == "private"
            peek = await call(bob, "memory_search", {"query": "zebra", "user_id": "alice", "present": ["alice", "bob"]})
            assert peek.is_error and "scoped to user 'bob'" in peek.text
            assert (await ok(alice, "memory_set_visibility", {"memory_id": mid, "visibility": "present"}))[
                "visibility"] == "present"
            assert (await ok(owner, "memory_set_visibility", {"memory_id": mid, "visibility": "everyone"}))[
                "visibility"] == "everyone"


def old_spec(dim: int) -> CollectionSpec:
    """The memories collection as it was before visibility: no index on visibility and heard_by."""
    spec = memories_spec(dim)
    fields = tuple(f for f in spec.keyword_fields if f not in ("visibility", "heard_by"))
    return CollectionSpec(spec.name, spec.dim, spec.sparse, spec.tenant_fields, fields, spec.float_fields)


def old_payload(content: str, scope: str, user: str) -> dict[str, Any]:
    at = "2024-03-01T10:00:00+00:00"
    return {"content": content, "scope": scope, "avatar_id": "default", "user_id": user, "session_id": None,
            "seq": 0, "occurred_at": at, "occurred_ts": 1709287200.0, "created_at": at, "created_ts": 1709287200.0,
            "updated_at": at, "source": "verbatim", "hash": uuid.uuid4().hex, "metadata": {}}


def write_old_store(home: Path) -> tuple[str, str]:
    """A user memory and an avatar memory as the server wrote them before visibility; their ids."""
    store = open_store(Settings(home=home), "memory", old_spec(384))
    vec = [1.0] + [0.0] * 383
    mine, shared = str(uuid.uuid4()), str(uuid.uuid4())
    store.upsert([Item(mine, old_payload("zebra alice's old secret", "user", "alice"), vec, "zebra alice's old secret"),
                  Item(shared, old_payload("zebra old house rule", "avatar", ""), vec, "zebra old house rule")])
    store.close()
    return mine, shared


async def test_a_store_written_before_visibility_reads_its_memories_as_private(tmp_path: Path) -> None:
    mine, shared = await off_loop(write_old_store, tmp_path)
    async with stdio_session("memory", server_env(tmp_path)) as s:
        assert (await ok(s, "memory_get", {"memory_id": mine}))["visibility"] == "private"
        assert (await ok(s, "memory_get", {"memory_id": shared}))["visibility"] == "everyone"
        assert await found(s, None) == {"zebra alice's old secret", "zebra old house rule"}
        assert await found(s, ["alice"]) == {"zebra alice's old secret", "zebra old house rule"}
        for tool in ("memory_search", "memory_list"):
            assert await found(s, ["alice", "bob"], tool) == {"zebra old house rule"}
        await ok(s, "memory_set_visibility", {"memory_id": mine, "visibility": "everyone"})
        assert await found(s, ["alice", "bob"]) == {"zebra alice's old secret", "zebra old house rule"}
