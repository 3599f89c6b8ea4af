"""The owner acting for one user (`_meta` "alphaavatar/act_as"), owner-only tools, and destructive
calls that wait for a person's yes (MCP elicitation), against `alphaavatar up` over HTTP with real
MCP clients: 2025-11-25 sessions, and the stateless 2026-07-28 revision through `InputRequiredResult`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2
import mcp.types as types
import pytest
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client

from mcp_servers.core.auth import ACT_AS, OWNER_ONLY
from mcp_servers.core.consent import CALL, TOOL_META
from tests.support import call, http_session, ok, up_with_tokens

OWNER = "owner-token"
TOKENS = {"tokB": "bob"}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with up_with_tokens(tmp_path_factory.mktemp("delegation"), OWNER, TOKENS) as url:
        yield url


def as_user(user: str, mark: str | None = None) -> dict[str, Any]:
    return {ACT_AS: user, **({CALL: mark} if mark else {})}


class Person:
    """An elicitation callback: records each question and answers as scripted."""

    def __init__(self, answer: types.ElicitResult):
        self.answer = answer
        self.asked: list[types.ElicitRequestParams] = []

    async def __call__(self, context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        self.asked.append(params)
        return self.answer


YES = types.ElicitResult(action="accept", content={"confirm": True})
NO = types.ElicitResult(action="decline")


async def test_the_owner_acting_for_a_user_has_exactly_that_users_rights(base: str) -> None:
    memory = f"{base}/memory/mcp"
    async with http_session(memory, OWNER) as s:
        alices = await ok(s, "memory_add", {"content": "Alice keeps her spare key under the blue pot", "user_id": "alice"})
        alice_id = alices["results"][0]["id"]
        # Delegated to bob: bob's own memories only, whatever the arguments name.
        mine = await ok(s, "memory_add", {"content": "Bob collects tin robots"}, meta=as_user("bob"))
        assert (await ok(s, "memory_get", {"memory_id": mine["results"][0]["id"]}))["user_id"] == "bob"
        aimed = await call(s, "memory_add", {"content": "planted", "user_id": "alice"}, meta=as_user("bob"))
        assert aimed.is_error and "scoped to user 'bob'" in aimed.text
        assert (await call(s, "memory_get", {"memory_id": alice_id}, meta=as_user("bob"))).is_error
        listed = await ok(s, "memory_list", {}, meta=as_user("bob"))
        assert {m["user_id"] for m in listed["results"]} == {"bob"}
        # ...and without the key, the same connection is the owner again.
        assert (await ok(s, "memory_get", {"memory_id": alice_id}))["user_id"] == "alice"
        trail = await ok(s, "memory_audit_list", {"user_id": "bob"})
        assert any(e["principal"] == "owner as user:bob" for e in trail["entries"])
        for bad in ("", " ", "x" * 201, 7):
            refused = await call(s, "memory_list", {}, meta={ACT_AS: bad})  # type: ignore[dict-item]
            assert refused.is_error and ACT_AS in refused.text
    # A user's token cannot act for anyone else, only for itself.
    async with http_session(memory, "tokB") as s:
        refused = await call(s, "memory_list", {}, meta=as_user("alice"))
        assert refused.is_error and "cannot act for user 'alice'" in refused.text
        assert {m["user_id"] for m in (await ok(s, "memory_list", {}, meta=as_user("bob")))["results"]} == {"bob"}


async def test_owner_only_tools_say_so_and_refuse_every_user(base: str) -> None:
    owner_only: set[str] = set()
    for server in ("memory", "persona", "character", "research"):
        async with http_session(f"{base}/{server}/mcp", OWNER) as s:
            tools = (await s.list_tools()).tools
            owner_only |= {t.name for t in tools if (t.meta or {}).get(OWNER_ONLY)}
            if server == "character":
                assert all((t.meta or {}).get(OWNER_ONLY) for t in tools)
    assert {"memory_reassign_user", "user_merge", "character_express"} <= owner_only
    assert not {"memory_forget_user", "memory_search", "user_get"} & owner_only
    async with http_session(f"{base}/memory/mcp", OWNER) as s:
        await ok(s, "memory_add", {"content": "Carol's cat is called Biscuit", "user_id": "carol"})
        moved = await call(s, "memory_reassign_user", {"user_id": "carol", "into_user_id": "bob"}, meta=as_user("carol"))
        assert moved.is_error and "Only the owner" in moved.text
        assert (await ok(s, "memory_list", {"user_id": "carol"}))["results"]
    async with http_session(f"{base}/persona/mcp", OWNER) as s:
        merged = await call(s, "user_merge", {"user_id": "bob", "into_user_id": "carol"}, meta=as_user("bob"))
        assert merged.is_error and "Only the owner" in merged.text


async def test_a_destructive_call_runs_only_on_its_persons_yes(base: str) -> None:
    memory = f"{base}/memory/mcp"
    async with http_session(memory, OWNER) as s:
        target = (await ok(s, "memory_add", {"content": "Dana's locker is number 42", "user_id": "dana"}))["results"][0]["id"]

    for answer in (NO, types.ElicitResult(action="cancel"), types.ElicitResult(action="accept", content={"confirm": False})):
        person = Person(answer)
        async with http_session(memory, OWNER, elicitation_callback=person) as s:
            kept = await call(s, "memory_delete", {"memory_id": target}, meta=as_user("dana", "mark-1"))
            assert kept.is_error and "Nothing was done" in kept.text
            assert (await ok(s, "memory_get", {"memory_id": target}))["content"] == "Dana's locker is number 42"
            # Read-only and other non-destructive calls ask nobody.
            await ok(s, "memory_search", {"query": "locker"}, meta=as_user("dana"))
        [question] = person.asked
        assert "memory_delete" in question.message and target in question.message and "dana" in question.message
        assert question.meta == {TOOL_META: "memory_delete", ACT_AS: "dana", CALL: "mark-1"}

    person = Person(YES)
    async with http_session(memory, OWNER, elicitation_callback=person) as s:
        await ok(s, "memory_delete", {"memory_id": target}, meta=as_user("dana"))
        assert (await call(s, "memory_get", {"memory_id": target})).is_error
        # A call that cannot run (bad arguments) asks nobody.
        assert (await call(s, "memory_delete", {"memory_id": 5})).is_error
    assert len(person.asked) == 1

    # A client that declares no elicitation gets the tool as before (its host approves calls itself).
    async with http_session(memory, OWNER) as s:
        other = (await ok(s, "memory_add", {"content": "Dana parks on level 3", "user_id": "dana"}))["results"][0]["id"]
        await ok(s, "memory_delete", {"memory_id": other})
        assert (await call(s, "memory_get", {"memory_id": other})).is_error


async def test_a_stateless_client_confirms_through_input_required(base: str) -> None:
    memory = f"{base}/memory/mcp"
    async with http_session(memory, OWNER) as s:
        kept = (await ok(s, "memory_add", {"content": "Eve's bike is green", "user_id": "eve"}))["results"][0]["id"]
        gone = (await ok(s, "memory_add", {"content": "Eve's bike lock code is 1234", "user_id": "eve"}))["results"][0]["id"]

    async def modern(answer: types.ElicitResult, memory_id: str) -> tuple[types.CallToolResult, Person]:
        person = Person(answer)
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {OWNER}"}, timeout=60) as http, \
                Client(streamable_http_client(memory, http_client=http), mode="2026-07-28",
                       elicitation_callback=person) as client:
            assert client.session.protocol_version == "2026-07-28"
            result = await client.call_tool("memory_delete", {"memory_id": memory_id}, meta=as_user("eve"))
        return result, person

    refused, person = await modern(NO, kept)
    assert refused.is_error and "Nothing was done" in refused.content[0].text  # type: ignore[union-attr]
    assert len(person.asked) == 1 and "memory_delete" in person.asked[0].message
    done, person = await modern(YES, gone)
    assert not done.is_error and len(person.asked) == 1
    async with http_session(memory, OWNER) as s:
        assert (await ok(s, "memory_get", {"memory_id": kept}))["content"] == "Eve's bike is green"
        assert (await call(s, "memory_get", {"memory_id": gone})).is_error


def test_consent_question_names_what_happens() -> None:
    from mcp_servers.core.auth import Principal
    from mcp_servers.core.consent import question

    text = question("memory_forget_user", "Erase every memory of a user.\nMore.", {"user_id": "zoe"},
                    Principal(user_id="zoe", delegated=True))
    assert text.startswith("Confirm memory_forget_user on behalf of user 'zoe': Erase every memory of a user, with")
    assert '{"user_id": "zoe"}' in text and "cannot be undone" in text
