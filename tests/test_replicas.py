"""Many replicas, one truth: three processes of the memory server and three of the research server
on one Qdrant deployment (the stand-in), behind a round-robin balancer with no affinity, driven by
MCP clients over the stateless 2026-07-28 revision (and one 2025-11-25 session, which the balancer
keeps on the replica holding it). Each promise of "Running at scale" (docs/scale.md) is a test.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mcp.types as types
import pytest
from mcp.shared.exceptions import MCPError

from tests.fakes.tavily_server import FakeTavily
from tests.replicas import Deployment, call, ok, qdrant_stand_in, stateless
from tests.support import http_session, server_env
from tests.support import ok as session_ok


@pytest.fixture(scope="module")
def qdrant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with qdrant_stand_in(tmp_path_factory.mktemp("qdrant")) as url:
        yield url


@pytest.fixture(scope="module")
def memory(tmp_path_factory: pytest.TempPathFactory, qdrant: str) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("memory")
    with Deployment("memory", root, qdrant, server_env(root, ALPHAAVATAR_REQUEST_STATE_KEY=STATE_KEY)) as d:
        yield d


@pytest.fixture(scope="module")
def tavily() -> Iterator[FakeTavily]:
    with FakeTavily(pages={"ssb": ("Solid-state batteries", "Solid-state batteries use a solid electrolyte.")}) as f:
        yield f


@pytest.fixture(scope="module")
def research(tmp_path_factory: pytest.TempPathFactory, qdrant: str, tavily: FakeTavily) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("research")
    env = server_env(root, TAVILY_API_KEY=tavily.api_key, TAVILY_BASE_URL=tavily.base_url,
                     ALPHAAVATAR_RESEARCH_FETCH_ALLOWLIST='["127.0.0.1"]')
    with Deployment("research", root, qdrant, env) as d:
        yield d


STATE_KEY = secrets.token_hex(32)  # every replica's: a call's requestState opens on any of them


def user() -> str:
    return f"u{uuid.uuid4().hex[:8]}"


async def test_replica_identical_concurrent_adds_store_one_memory(memory: Deployment) -> None:
    who, text = user(), "I keep my bicycle in the shed behind the house"
    async with stateless(memory.mcp) as c:
        added = await asyncio.gather(*[ok(c, "memory_add", {"content": text, "user_id": who, "infer": False})
                                       for _ in range(9)])
        ids = {e["id"] for r in added for e in r["results"]}
        listed = await ok(c, "memory_list", {"user_id": who})
        history = await ok(c, "memory_history", {"memory_id": ids.pop()})
    assert not ids, "every replica answered with the one memory's id"
    assert [m["content"] for m in listed["results"]] == [text]
    assert sum(e["event"] == "ADD" for r in added for e in r["results"]) >= 1
    assert [e["event"] for e in history["events"]] == ["ADD"]
    assert min(memory.balancer.hits.values()) > 0, "the balancer spread the calls over every replica"


async def test_replica_concurrent_updates_lose_nothing(memory: Deployment) -> None:
    who = user()
    async with stateless(memory.mcp) as c:
        added = await ok(c, "memory_add", {"content": "my favourite colours", "user_id": who, "infer": False})
        mid = added["results"][0]["id"]
        await asyncio.gather(*[ok(c, "memory_update", {"memory_id": mid, "metadata": {f"k{i}": i}}) for i in range(6)])
        item = await ok(c, "memory_get", {"memory_id": mid})
        history = await ok(c, "memory_history", {"memory_id": mid})
    assert item["metadata"] == {f"k{i}": i for i in range(6)}, "no replica's update overwrote another's"
    assert [e["event"] for e in history["events"]] == ["ADD"] + ["UPDATE"] * 6


async def test_replica_history_and_audit_are_one(memory: Deployment) -> None:
    who = user()
    async with stateless(memory.mcp) as c:
        for n in range(3):
            await ok(c, "memory_add", {"content": f"fact number {n} about tea", "user_id": who, "infer": False})
    answers = []
    for i in range(3):  # each replica directly: the same history and the same trail
        async with stateless(memory.replica_mcp(i)) as c:
            items = (await ok(c, "memory_list", {"user_id": who}))["results"]
            trail = await ok(c, "memory_audit_list", {"user_id": who})
            answers.append((sorted(m["id"] for m in items), [e["seq"] for e in trail["entries"] if e["name"] == "memory_add"]))
    assert answers[0] == answers[1] == answers[2]
    assert len(answers[0][0]) == 3 and len(answers[0][1]) == 3


async def test_replica_forget_erases_everywhere(memory: Deployment) -> None:
    who = user()
    async with stateless(memory.mcp) as c:
        ids = [(await ok(c, "memory_add", {"content": f"secret {n} of the garden", "user_id": who, "infer": False}))
               ["results"][0]["id"] for n in range(4)]
        await ok(c, "memory_update", {"memory_id": ids[0], "content": "secret 0, changed"})
        gone = await ok(c, "memory_forget_user", {"user_id": who})
    assert gone["memories_deleted"] == 4 and gone["history_events_deleted"] == 5
    for i in range(3):  # the trail first: the reads below are new entries of their own
        async with stateless(memory.replica_mcp(i)) as c:
            assert (await ok(c, "memory_audit_list", {"user_id": who}))["entries"] == []
    for i in range(3):
        async with stateless(memory.replica_mcp(i)) as c:
            assert (await ok(c, "memory_list", {"user_id": who}))["results"] == []
            for mid in ids:
                r = await call(c, "memory_history", {"memory_id": mid})
                assert r.is_error or r.data["events"] == [], r.text


async def test_replica_followups_are_one(memory: Deployment) -> None:
    """Follow-ups derived on any replica are one set: listed, updated and erased through every replica."""
    who, said = user(), "Remind me to call my mother tomorrow at six."
    add = {"content": said, "user_id": who, "infer": False, "occurred_at": "2023-05-08T13:56:00+01:00"}
    async with stateless(memory.mcp) as c:
        await asyncio.gather(*[ok(c, "memory_add", add) for _ in range(6)])
    listed = []
    for i in range(3):
        async with stateless(memory.replica_mcp(i)) as c:
            listed.append((await ok(c, "followup_list", {"user_id": who}))["results"])
    assert listed[0] == listed[1] == listed[2], "every replica lists the same follow-ups"
    [followup] = listed[0]
    assert followup["due_at"] == "2023-05-09T18:00:00+01:00", "identical adds on three replicas derive one"
    async with stateless(memory.replica_mcp(1)) as c:
        await ok(c, "followup_update", {"followup_id": followup["id"], "status": "done"})
    async with stateless(memory.replica_mcp(2)) as c:
        assert (await ok(c, "followup_list", {"user_id": who}))["results"] == []
        every = await ok(c, "followup_list", {"user_id": who, "include_done": True})
        assert [f["status"] for f in every["results"]] == ["done"]
    into = user()
    async with stateless(memory.replica_mcp(0)) as c:
        await ok(c, "memory_reassign_user", {"user_id": who, "into_user_id": into})
    async with stateless(memory.replica_mcp(1)) as c:
        assert (await ok(c, "followup_list", {"user_id": who, "include_done": True}))["total"] == 0
        moved = await ok(c, "followup_list", {"user_id": into, "include_done": True})
        assert [f["id"] for f in moved["results"]] == [followup["id"]], "the follow-up moved with its memory"
        await ok(c, "memory_forget_user", {"user_id": into})
    for i in range(3):
        async with stateless(memory.replica_mcp(i)) as c:
            assert (await ok(c, "followup_list", {"user_id": into, "include_done": True}))["total"] == 0
            gone = await call(c, "followup_update", {"followup_id": followup["id"], "status": "open"})
            assert gone.is_error and "No follow-up" in gone.text


async def test_replica_export_is_read_anywhere_and_erased_everywhere(memory: Deployment) -> None:
    """An export made on one replica is read whole through the others; a forget on any erases it everywhere."""
    who = user()
    async with stateless(memory.replica_mcp(0)) as c:
        for n in range(3):
            await ok(c, "memory_add", {"content": f"export fact {n} about kites", "user_id": who, "infer": False})
        made = await ok(c, "memory_export", {"user_id": who, "format": "json"})
    assert made["path"] is None and made["count"] == 3, "no file on the replica that made it"
    for i in (1, 2):
        async with stateless(memory.replica_mcp(i)) as c:
            read = await c.read_resource(made["uri"])
            assert read.contents[0].text == made["content"]  # type: ignore[union-attr]
    async with stateless(memory.replica_mcp(2)) as c:
        gone = await ok(c, "memory_forget_user", {"user_id": who})
    assert gone["exports_deleted"] == 1
    for i in range(3):
        async with stateless(memory.replica_mcp(i)) as c:
            with pytest.raises(MCPError, match="No export named"):
                await c.read_resource(made["uri"])


async def test_replica_confirms_a_destructive_call_asked_on_another(memory: Deployment) -> None:
    """2026-07-28: the question of a destructive call comes from one replica and the retry with the
    person's yes lands on the next (round-robin); that replica opens the sealed state and runs it, once."""
    who, asked = user(), []

    async def person(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params)
        return types.ElicitResult(action="accept", content={"confirm": True})

    async with stateless(memory.mcp, elicitation_callback=person) as c:
        mid = (await ok(c, "memory_add", {"content": "the spare key is under the blue pot", "user_id": who,
                                          "infer": False}))["results"][0]["id"]
        start = len(memory.balancer.routed)
        deleted = await ok(c, "memory_delete", {"memory_id": mid})
        rounds = [(target, m["params"]) for target, m in memory.balancer.routed[start:]
                  if m.get("method") == "tools/call" and m["params"]["name"] == "memory_delete"]
        history = await ok(c, "memory_history", {"memory_id": mid})
    assert deleted["deleted"] and len(asked) == 1
    [(first, ask), (second, answer)] = rounds
    assert "requestState" not in ask and answer["requestState"] and first != second, "asked on one, confirmed on another"
    assert [e["event"] for e in history["events"]] == ["ADD", "DELETE"], "it ran once"


async def test_replica_session_keeps_affinity(memory: Deployment) -> None:
    """A 2025-11-25 session lives in the replica that answered its initialize: the balancer keeps it there."""
    who = user()
    async with http_session(memory.mcp) as s:
        for n in range(4):
            await session_ok(s, "memory_add", {"content": f"session fact {n}", "user_id": who, "infer": False})
        listed = await session_ok(s, "memory_list", {"user_id": who})
    assert len(listed["results"]) == 4


async def test_replica_killed_mid_write_loses_no_acknowledged_write(memory: Deployment) -> None:
    who, victim = user(), memory.replicas[2]
    acknowledged: list[str] = []
    tags = [f"batch{uuid.uuid4().hex[:6]}" for _ in range(60)]
    queue = list(tags)

    async def stream() -> None:
        """Batches one after another to the victim, until the kill cuts one."""
        async with stateless(memory.replica_mcp(2)) as c:
            while queue:
                tag = queue.pop(0)
                items = [{"content": f"{tag} item {k}", "user_id": who, "infer": False} for k in range(5)]
                r = await call(c, "memory_add_batch", {"items": items})
                if not r.is_error:
                    acknowledged.append(tag)

    async def killer() -> None:
        while len(acknowledged) < 4:
            await asyncio.sleep(0.01)
        victim.kill()

    outcomes = await asyncio.gather(killer(), *[stream() for _ in range(3)], return_exceptions=True)
    assert outcomes[0] is None and any(isinstance(o, Exception) for o in outcomes[1:]), "the kill cut writes"
    assert 4 <= len(acknowledged) < len(tags)
    memory.balancer.down.add(victim.base)
    try:
        async with stateless(memory.mcp) as c:
            items = (await ok(c, "memory_list", {"user_id": who, "limit": 200}))["results"]
            stored = [m["content"] for m in items]
            for tag in tags:  # one store write per batch: all of it or none of it
                n = sum(s.startswith(f"{tag} ") for s in stored)
                assert n in (0, 5), f"{tag}: {n} of 5 items"
                if tag in acknowledged:
                    assert n == 5, f"acknowledged {tag} lost"
            for m in items:
                if any(m["content"].startswith(f"{t} ") for t in acknowledged):
                    events = (await ok(c, "memory_history", {"memory_id": m["id"]}))["events"]
                    assert [e["event"] for e in events] == ["ADD"]
    finally:
        victim.start()
        victim.wait()
        memory.balancer.down.discard(victim.base)


async def test_replica_research_job_moves_between_replicas(research: Deployment, tavily: FakeTavily) -> None:
    question = "How do solid-state batteries work?"
    tavily.delay = 0.5
    try:
        async with stateless(research.replica_mcp(0)) as a:
            job = await ok(a, "research_start", {"question": question, "sources": "web"})
        async with stateless(research.replica_mcp(1)) as b:
            status = await ok(b, "research_status", {"job_id": job["job_id"]})
            assert status["state"] in ("running", "done")
            out = await ok(b, "research_result", {"job_id": job["job_id"], "wait_s": 40})
            assert out["state"] == "done", out
            assert out["result"]["sources"][0]["url"] == tavily.url("ssb")
        tavily.delay = 30.0
        async with stateless(research.replica_mcp(1)) as b:
            slow = await ok(b, "research_start", {"question": "solid-state battery recycling", "sources": "web"})
        async with stateless(research.replica_mcp(2)) as c:
            cancelled = await ok(c, "research_cancel", {"job_id": slow["job_id"]})
            assert cancelled["state"] == "cancelled"
        async with stateless(research.replica_mcp(0)) as a:
            out = await ok(a, "research_result", {"job_id": slow["job_id"]})
            assert out["state"] == "cancelled" and out["result"] is None
            gone = await ok(a, "research_forget_user", {"user_id": "nobody-" + uuid.uuid4().hex[:6]})
            assert gone["jobs_deleted"] == 0
    finally:
        tavily.delay = 0.0


def test_replica_deployment_keeps_nothing_on_local_disk(memory: Deployment) -> None:
    """With QDRANT_URL set, a replica's home holds its log and nothing else: store, history, follow-ups and
    trail are in the deployment."""
    for r in memory.replicas:
        kept = {p.name for p in Path(r.home).rglob("*") if p.is_file() and not p.name.endswith(".log")}
        assert kept == set(), sorted(kept)
