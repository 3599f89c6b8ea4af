"""Concurrent writes over real MCP sessions: group commit keeps the meaning of each call.

Many HTTP clients at once against one memory server: identical adds for one user still store
one memory, concurrent updates of one memory lose nothing, and the history tells each change.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from pathlib import Path

from tests.support import http_server, http_session, ok, server_env

CLIENTS = 16


async def test_concurrent_identical_adds_store_one_memory_and_updates_lose_nothing(tmp_path: Path) -> None:
    with http_server(["serve", "memory", "--transport", "http"], server_env(tmp_path)) as base:
        async with contextlib.AsyncExitStack() as stack:
            sessions = [await stack.enter_async_context(http_session(f"{base}/mcp")) for _ in range(CLIENTS)]
            await ok(sessions[0], "memory_add", {"content": "warm up", "user_id": "other"})

            # the same fact, spelled with other spacing and case, from every client at once
            texts = [("Zoe keeps bees on the roof" if i % 2 else "  zoe KEEPS bees on   the roof ") for i in range(CLIENTS)]
            adds = await asyncio.gather(*(ok(s, "memory_add", {"content": t, "user_id": "zoe"})
                                          for s, t in zip(sessions, texts, strict=True)))
            events = [a["results"][0] for a in adds]
            assert len({e["id"] for e in events}) == 1, events
            assert sorted(e["event"] for e in events) == ["ADD"] + ["DUPLICATE"] * (CLIENTS - 1)
            batch = [{"content": "Zoe's hives are on the roof", "user_id": "zoe"}] * 3
            batches = await asyncio.gather(*(ok(s, "memory_add_batch", {"items": batch}) for s in sessions[:4]))
            assert len({e["id"] for b in batches for e in b["results"]}) == 1
            listed = await ok(sessions[0], "memory_list", {"user_id": "zoe", "limit": 50})
            assert listed["total"] == 2, listed
            mid = events[0]["id"]
            history = await ok(sessions[0], "memory_history", {"memory_id": mid})
            assert [e["event"] for e in history["events"]] == ["ADD"]

            # every client merges its own metadata key, and half of them also change the text
            async def update(i: int) -> None:
                args = {"memory_id": mid, "metadata": {f"k{i}": i}, **({"content": f"Zoe keeps {i} hives"} if i % 2 else {})}
                await ok(sessions[i], "memory_update", args)

            await asyncio.gather(*(update(i) for i in range(CLIENTS)))
            got = await ok(sessions[0], "memory_get", {"memory_id": mid})
            assert got["metadata"] == {f"k{i}": i for i in range(CLIENTS)}, got["metadata"]
            events = (await ok(sessions[0], "memory_history", {"memory_id": mid}))["events"]
            assert [e["event"] for e in events] == ["ADD"] + ["UPDATE"] * CLIENTS
            for before, after in itertools.pairwise(events):  # each change starts from the last
                assert after["old"] == before["new"], (before, after)
            assert events[-1]["new"] == got["content"]
            found = await ok(sessions[1], "memory_search", {"query": got["content"], "user_id": "zoe", "limit": 1})
            assert found["results"][0]["id"] == mid  # re-embedded and re-indexed with the final text
