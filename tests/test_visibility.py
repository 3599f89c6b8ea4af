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
from mcp_servers.memory.records import memories_spec
from mcp_servers.persona.profile import build
from tests.fakes.openai_server import FakeOpenAI
from tests.support import call, http_server, http_session, ok, server_env, stdio_session
from tests.test_memory import _llm as scripted_llm


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


def facts_of(profile: dict[str, Any]) -> set[str]:
    """Every fact value a profile shows, as text."""
    out = set()
    for section, value in profile.items():
        if section in ("user_id", "name", "provisional") or value is None:
            continue
        groups = value.values() if section in ("identity", "custom") else [value]
        for group in groups:
            for fact in group if isinstance(group, list) else [group]:
                if fact:
                    out.add(str(fact["value"]))
    return out


async def test_a_profile_shows_only_the_facts_everyone_present_may_hear(tmp_path: Path) -> None:
    async with stdio_session("persona", server_env(tmp_path)) as s:
        ada = (await ok(s, "user_create", {"name": "Ada"}))["user_id"]
        together = await ok(s, "profile_update", {"user_id": ada, "present": [ada, "bob"], "patches": [
            {"op": "add", "field": "preferences", "value": "likes jazz"},
            {"op": "set", "field": "identity.location", "value": "Lyon", "visibility": "private"},
            {"op": "set", "field": "custom.team", "value": "OL", "visibility": "everyone"}]})
        assert [c["visibility"] for c in together["changes"]] == ["present", "private", "everyone"]
        assert together["profile"]["preferences"][0]["heard_by"] == sorted([ada, "bob"])
        await ok(s, "profile_update", {"user_id": ada, "patches": [
            {"op": "add", "field": "preferences", "value": "secret hobby"}]})
        everything = {"Ada", "likes jazz", "Lyon", "OL", "secret hobby"}
        cases: list[tuple[list[str] | None, set[str]]] = [
            (None, everything), ([ada], everything),
            ([ada, "bob"], {"Ada", "likes jazz", "OL"}),
            (["bob"], {"Ada", "likes jazz", "OL"}),
            ([ada, "carol"], {"Ada", "OL"}),
            ([ada, "bob", "someone"], {"Ada", "OL"}),
        ]
        for present, expected in cases:
            got = await ok(s, "profile_get", {"user_id": ada, **({"present": present} if present is not None else {})})
            assert facts_of(got) == expected, present
            assert got["name"] == "Ada", (present, got)

        shown = await ok(s, "profile_update", {"user_id": ada, "patches": [
            {"op": "add", "field": "preferences", "value": "Secret  hobby", "visibility": "everyone"},
            {"op": "set", "field": "identity.name", "value": "Ada", "visibility": "private"}]})
        assert [(c["op"], c["visibility"]) for c in shown["changes"]] == [("visibility", "everyone"),
                                                                          ("visibility", "private")]
        hidden = await ok(s, "profile_get", {"user_id": ada, "present": [ada, "carol"]})
        assert facts_of(hidden) == {"OL", "secret hobby"} and hidden["name"] == "someone"
        assert (await ok(s, "profile_get", {"user_id": ada, "present": [ada]}))["name"] == "Ada"
        history = await ok(s, "profile_history", {"user_id": ada, "field": "preferences"})
        assert [c["op"] for c in history["changes"]] == ["add", "add", "visibility"]
        bad = await call(s, "profile_update", {"user_id": ada, "patches": [
            {"op": "add", "field": "preferences", "value": "x", "visibility": "friends"}]})
        assert bad.is_error


def test_profile_facts_stored_before_visibility_keep_the_name_for_everyone() -> None:
    seen = {"source": "manual", "source_ref": None, "confidence": 1.0, "first_seen": "2024-01-01T00:00:00+00:00",
            "last_seen": "2024-01-01T00:00:00+00:00"}
    user = {"user_id": "u1", "name": "Ada", "facts": [{"field": "identity.name", "value": "Ada", **seen},
                                                      {"field": "preferences", "value": "likes jazz", **seen}]}
    crowd = build(user, ["u1", "bob"])
    assert crowd.name == "Ada" and crowd.identity.name is not None and crowd.identity.name.visibility == "everyone"
    assert crowd.preferences == []
    alone = build(user, ["u1"])
    assert [f.visibility for f in alone.preferences] == ["private"]


async def test_extracted_facts_are_heard_by_who_heard_them_said(tmp_path: Path) -> None:
    with FakeOpenAI(scripted_llm) as llm:
        env = server_env(tmp_path, OPENAI_BASE_URL=llm.base_url, OPENAI_API_KEY="test-key",
                         ALPHAAVATAR_LLM_MODEL="fake-model")
        async with stdio_session("memory", env) as s:
            first = await ok(s, "memory_add", {"user_id": "fritz", "present": ["fritz", "bob"], "messages": [
                {"role": "user", "content": "Hi! I live in Paris and I bake bread for a living."}]})
            for event in first["results"]:
                got = await ok(s, "memory_get", {"memory_id": event["id"]})
                assert (got["visibility"], got["heard_by"]) == ("present", ["bob", "fritz"])
            # told alone, the move replaces what bob heard: the new words are fritz's only
            moved = await ok(s, "memory_add", {"user_id": "fritz", "content": "I moved to Berlin last month."})
            assert [(e["event"], e["content"]) for e in moved["results"]] == [("UPDATE", "Lives in Berlin")]
            got = await ok(s, "memory_get", {"memory_id": moved["results"][0]["id"]})
            assert (got["visibility"], got["heard_by"]) == ("private", [])
            heard = await ok(s, "memory_list", {"user_id": "fritz", "present": ["fritz", "bob"]})
            assert [m["content"] for m in heard["results"]] == ["Works as a baker"]


async def test_forgetting_a_user_takes_them_out_of_who_heard_what(tmp_path: Path) -> None:
    async with stdio_session("memory", server_env(tmp_path)) as s:
        said = await ok(s, "memory_add_batch", {"items": [
            {"content": "zebra alice told bob and carol", "user_id": "alice", "present": ["alice", "u-7f3a", "carol"]},
            {"content": "zebra alice told bob", "user_id": "alice", "present": ["alice", "u-7f3a"]},
            {"content": "zebra alice alone", "user_id": "alice"}]})
        await ok(s, "memory_add", {"content": "zebra bob's own", "user_id": "u-7f3a"})
        gone = await ok(s, "memory_forget_user", {"user_id": "u-7f3a"})
        assert gone["memories_deleted"] == 1
        heard = [(await ok(s, "memory_get", {"memory_id": e["id"]}))["heard_by"] for e in said["results"]]
        assert heard == [["alice", "carol"], ["alice"], []]
        assert await found(s, ["alice", "carol"]) == {"zebra alice told bob and carol"}
    assert b"u-7f3a" not in b"".join(p.read_bytes() for p in (tmp_path / "memory" / "memories").rglob("*") if p.is_file())
