"""Isolation on every surface, by construction: bob's token against every tool, resource and prompt
the four live servers publish, aimed at alice's data.

Nothing here lists tools by hand. Each argument is filled from its name (the table `seed_alice` returns: alice's ids, words
that match her secrets, her voice and face) or, for plain options, from its schema. An identifying
argument (`*_id`, `*_ids`) the table does not know fails the test, so a new tool must be classified
here before it can ship — and is then covered without anyone adding it to a list.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.shared.exceptions import MCPError

from tests.datasets import FACES, file_b64, fsdd, needs_faces, needs_fsdd, wav_b64
from tests.support import http_server, http_session, ok, server_env

SERVERS = ("memory", "persona", "character", "research")
SECRETS = ("saffron-lighthouse-4711", "marzipan-glacier-0815", "tangerine-obelisk-2207", "walnut-zeppelin-9931")
WORDS = "saffron lighthouse marzipan glacier tangerine obelisk walnut zeppelin"
TOKENS = {"tokA": "alice", "tokB": "bob"}


def schema_value(schema: dict[str, Any]) -> Any:
    """A plain valid value for an option that names no data (a limit, a flag, a format)."""
    if "default" in schema and schema["default"] is not None:
        return schema["default"]
    if "enum" in schema:
        return schema["enum"][0]
    for alt in schema.get("anyOf", []):
        if alt.get("type") != "null":
            return schema_value(alt)
    kind = schema.get("type")
    if kind in ("integer", "number"):
        return schema.get("minimum", 1)
    if kind == "boolean":
        return False
    if kind == "array":
        return []
    if kind == "object":
        return {}
    return "x"


def arguments(tool: str, schema: dict[str, Any], table: dict[str, Any]) -> dict[str, Any]:
    args: dict[str, Any] = {}
    required = set(schema.get("required", []))
    for name, prop in schema.get("properties", {}).items():
        if name in table:
            args[name] = table[name]
        elif name.endswith(("id", "ids")):
            pytest.fail(f"{tool}: argument {name!r} names data the isolation test cannot classify; add it to seed_alice's table")
        elif name in required:
            args[name] = schema_value(prop)
    return args


def user_ids(data: Any) -> Iterator[Any]:
    """Every value of a key that names a user, anywhere in a result."""
    if isinstance(data, dict):
        for k, v in data.items():
            if k.endswith("user_id"):
                yield v
            yield from user_ids(v)
    elif isinstance(data, list):
        for v in data:
            yield from user_ids(v)


def assert_nothing_of_alice(what: str, text: str, data: Any = None) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{what} showed bob alice's secret: {text[:500]}"
    assert "alice" not in list(user_ids(data)), f"{what} named alice to bob: {text[:500]}"


async def seed_alice(base: str) -> dict[str, Any]:
    """Alice's data on every server, written with her own token: the ids bob will aim at."""
    voice = fsdd()["george"]
    face = file_b64(FACES / "obama" / "obama_1.jpg")
    async with http_session(f"{base}/memory/mcp", "tokA") as s:
        mem = await ok(s, "memory_add", {"content": f"Alice's locker code is {SECRETS[0]}", "session_id": "alice-s1"})
        await ok(s, "memory_add", {"content": f"In this chat alice said {SECRETS[0]}", "scope": "session",
                                   "session_id": "alice-s1"})
        await ok(s, "tool_call_record", {"tool": "web_search", "arguments": {"q": SECRETS[1]},
                                         "outcome": SECRETS[1], "task": "find the glacier"})
        await ok(s, "memory_add", {"content": f"Remind me tomorrow at six to check the {SECRETS[0]}",
                                   "scope": "session", "session_id": "alice-s1"})
        followup = (await ok(s, "followup_list", {}))["results"][0]
        export = await ok(s, "memory_export", {"format": "markdown"})
    async with http_session(f"{base}/persona/mcp", "tokA") as s:
        await ok(s, "speaker_enroll", {"user_id": "alice", "audio": [wav_b64(c) for c in voice[:2]]})
        await ok(s, "face_enroll", {"user_id": "alice", "image": face})
        await ok(s, "profile_update", {"user_id": "alice", "patches": [
            {"op": "add", "field": "preferences", "value": SECRETS[2]}]})
    async with http_session(f"{base}/research/mcp", "tokA") as s:
        doc = await ok(s, "corpus_add", {"text": f"Alice's diary: the {SECRETS[3]} is hidden in the garden.",
                                         "title": "alice diary"})
        job = await ok(s, "research_start", {"question": f"where is the {SECRETS[3]}?", "sources": "corpus"})
        await ok(s, "research_result", {"job_id": job["job_id"], "wait_s": 30})
    return {
        "user_id": "alice", "into_user_id": "bob", "memory_id": mem["results"][0]["id"], "session_id": "alice-s1",
        "followup_id": followup["id"], "export_name": export["uri"].rsplit("/", 1)[1],
        "doc_id": doc["document"]["doc_id"], "job_id": job["job_id"],
        "query": WORDS, "task": WORDS, "topic": WORDS, "question": f"Where is the {WORDS}?",
        "audio": wav_b64(voice[2]), "image": face,
        "content": "bob was here", "text": "bob was here", "conversation": "user: I am bob, I like chess.",
        "name": "Mallory", "tool": "web_search", "arguments": {"q": "bob"}, "outcome": "bob",
        "patches": [{"op": "set", "field": "identity.preferred_name", "value": "Bobby"}],
        "items": [{"content": "bob's batch", "user_id": "alice"}],
        "messages": [{"role": "user", "content": "bob was here"}],
        "visibility": "everyone", "present": ["bob"],
        "urls": ["http://127.0.0.1:9/"], "emotion": "happy", "state": "speaking", "x": 0.0, "y": 0.0,
    }


async def assert_alice_intact(base: str, seeded: dict[str, Any]) -> None:
    async with http_session(f"{base}/memory/mcp", "tokA") as s:
        got = await ok(s, "memory_get", {"memory_id": seeded["memory_id"]})
        assert got["content"] == f"Alice's locker code is {SECRETS[0]}"
        assert got["visibility"] == "private"  # bob's memory_set_visibility changed nothing
        listed = await ok(s, "memory_list", {"scope": "user"})
        assert [m["content"] for m in listed["results"]] == [got["content"]]
        assert (await ok(s, "tool_experience_search", {"task": "glacier"}))["results"]
        followups = (await ok(s, "followup_list", {}))["results"]
        assert [(f["id"], f["status"]) for f in followups] == [(seeded["followup_id"], "open")]
    async with http_session(f"{base}/persona/mcp", "tokA") as s:
        user = await ok(s, "user_get", {"user_id": "alice"})
        assert user["voice_samples"] and user["face_samples"] == 1 and user["name"] == "alice"
        profile = await ok(s, "profile_get", {"user_id": "alice"})
        assert SECRETS[2] in json.dumps(profile) and "Bobby" not in json.dumps(profile)
    async with http_session(f"{base}/research/mcp", "tokA") as s:
        found = await ok(s, "corpus_search", {"query": "diary garden"})
        assert SECRETS[3] in json.dumps(found)
        assert (await ok(s, "research_status", {"job_id": seeded["job_id"]}))["state"] == "done"


async def probe_as_bob(s: ClientSession, server: str, table: dict[str, Any]) -> int:
    """Call every tool, resource, template and prompt `s` lists; the number of calls made."""
    calls = 0
    for tool in (await s.list_tools()).tools:
        res = await s.call_tool(tool.name, arguments(tool.name, tool.input_schema, table))
        text = "\n".join(getattr(c, "text", "") for c in res.content)
        assert_nothing_of_alice(f"{server}.{tool.name}", text + json.dumps(res.structured_content),
                                None if res.is_error else res.structured_content)
        calls += 1
    uris = [str(r.uri) for r in (await s.list_resources()).resources]
    for template in (await s.list_resource_templates()).resource_templates:
        uri = template.uri_template
        for name in [p.strip("{}") for p in uri.split("/") if p.startswith("{")]:
            if name not in table:
                pytest.fail(f"{server}: template {uri} has a parameter {name!r} the isolation test cannot classify")
            uri = uri.replace("{" + name + "}", str(table[name]))
        uris.append(uri)
    for uri in uris:
        try:
            read = await s.read_resource(uri)
            text = json.dumps([c.model_dump(mode="json") for c in read.contents])
        except MCPError as exc:
            text = str(exc)
        assert_nothing_of_alice(f"{server} {uri}", text)
        calls += 1
    for prompt in (await s.list_prompts()).prompts:
        args = {a.name: str(table[a.name]) if a.name in table else "x" for a in prompt.arguments or []}
        try:
            got = await s.get_prompt(prompt.name, args)
            text = json.dumps([m.model_dump(mode="json") for m in got.messages])
        except MCPError as exc:
            text = str(exc)
        assert_nothing_of_alice(f"{server} prompt {prompt.name}", text)
        calls += 1
    return calls


@needs_fsdd
@needs_faces
async def test_bob_sees_and_changes_nothing_of_alice_on_any_surface(tmp_path: Path) -> None:
    env = server_env(tmp_path, ALPHAAVATAR_TOKEN="owner-token", ALPHAAVATAR_USER_TOKENS=json.dumps(TOKENS),
                     ALPHAAVATAR_LOG_LEVEL="DEBUG")
    log = tmp_path / "up.log"
    with http_server(["up"], env, log=log) as base:
        seeded = await seed_alice(base)
        calls = 0
        for server in SERVERS:
            async with http_session(f"{base}/{server}/mcp", "tokB") as s:
                calls += await probe_as_bob(s, server, seeded)
            headers = {"Authorization": "Bearer tokB"}
            async with sse_client(f"{base}/{server}/sse", headers=headers) as (read, write), \
                    ClientSession(read, write) as s:
                await s.initialize()
                calls += await probe_as_bob(s, server, seeded)
        assert calls > 100
        await assert_alice_intact(base, seeded)
        await assert_hub_is_the_owners(base)
    logged = log.read_text()
    assert "request_id" in logged  # the log is there, at DEBUG, and holds no token
    for token in ("owner-token", *TOKENS):
        assert token not in logged, f"{token} appears in the server log"
        assert bearer(token)[1] not in logged, f"{token} appears base64url-encoded in the server log"


def bearer(token: str) -> list[Any]:
    """The WebSocket subprotocols a browser page offers to carry `token` (base64url, unpadded)."""
    return ["alphaavatar.bearer", base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")]


async def hub_answer(url: str, **kw: Any) -> str:
    """The hub's first line, or how it refused: 'closed <code>' / 'http <status>'."""
    try:
        async with websockets.connect(url, open_timeout=10, **kw) as ws:
            return str(await asyncio.wait_for(ws.recv(), 10))
    except websockets.exceptions.ConnectionClosed as exc:
        return f"closed {exc.rcvd.code if exc.rcvd else None}"
    except websockets.exceptions.InvalidStatus as exc:
        return f"http {exc.response.status_code}"


async def assert_hub_is_the_owners(base: str) -> None:
    """Watching the character shows what it says to everyone: owner only, and no rebinding."""
    ws = base.replace("http://", "ws://") + "/character/ws"
    async with http_session(f"{base}/character/mcp", "owner-token") as s:
        await ok(s, "character_express", {"emotion": "happy"})
    assert (await hub_answer(ws, subprotocols=bearer("tokB"))).startswith(("closed 4403", "http 403"))
    assert (await hub_answer(ws)).startswith(("closed 4401", "http 403"))
    assert (await hub_answer(f"{ws}?token=owner-token")).startswith(("closed 4401", "http 403"))  # never in a URL
    assert (await hub_answer(ws, subprotocols=["alphaavatar.bearer", "bm9wZQ"])).startswith(("closed 4401", "http 403"))
    async with websockets.connect(ws, subprotocols=bearer("owner-token"), open_timeout=10) as watching:
        assert watching.subprotocol == "alphaavatar.bearer"  # the answer names the scheme, never the token
        assert '"kind"' in str(await asyncio.wait_for(watching.recv(), 10))
    foreign = await hub_answer(ws, subprotocols=bearer("owner-token"), origin="http://evil.example")
    assert foreign.startswith(("closed 4403", "http 403"))
    rebound = httpx.get(f"{base}/healthz", headers={"Host": "evil.example:80"})
    assert rebound.status_code == 421
    viewer = httpx.get(f"{base}/character/", headers={"Authorization": "Bearer owner-token", "Host": "evil.example"})
    assert viewer.status_code == 421
