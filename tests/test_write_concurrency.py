"""Concurrent writes over real MCP sessions: group commit keeps the meaning of each call.

Many HTTP clients at once against one memory server: identical adds for one user still store
one memory, concurrent updates of one memory lose nothing, and the history tells each change.
The same against persona's profiles: concurrent patchings of two users all apply, in order, and
one that cannot apply is refused alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from pathlib import Path
from typing import Any

from tests.support import call, http_server, http_session, ok, server_env

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


async def test_concurrent_profile_updates_all_apply_and_a_bad_one_fails_alone(tmp_path: Path) -> None:
    with http_server(["serve", "persona", "--transport", "http"], server_env(tmp_path)) as base:
        async with contextlib.AsyncExitStack() as stack:
            sessions = [await stack.enter_async_context(http_session(f"{base}/mcp")) for _ in range(CLIENTS)]
            ada = (await ok(sessions[0], "user_create", {"name": "Ada"}))["user_id"]
            bo = (await ok(sessions[0], "user_create", {"name": "Bo"}))["user_id"]
            gone = (await ok(sessions[0], "user_create", {"name": "Gone"}))["user_id"]
            await ok(sessions[0], "user_forget", {"user_id": gone})

            def patch(i: int) -> dict[str, Any]:
                return {"user_id": ada if i % 2 else bo,
                        "patches": [{"op": "add", "field": "preferences", "value": f"likes {'ada' if i % 2 else 'bo'} thing {i}"}]}

            answers = await asyncio.gather(*(call(s, "profile_update", patch(i)) for i, s in enumerate(sessions)),
                                           call(sessions[0], "profile_update", {**patch(0), "user_id": gone}))
            *good, bad = answers
            assert not any(a.is_error for a in good), [a.text for a in good if a.is_error]
            assert bad.is_error and "No user" in bad.text, bad.text
            for user, ours in ((ada, range(1, CLIENTS, 2)), (bo, range(0, CLIENTS, 2))):
                want = {f"likes {'ada' if user == ada else 'bo'} thing {i}" for i in ours}
                prof = await ok(sessions[0], "profile_get", {"user_id": user})
                assert {f["value"] for f in prof["preferences"]} == want
                page = await ok(sessions[0], "profile_history", {"user_id": user, "field": "preferences", "limit": 50})
                assert sorted(c["new"] for c in page["changes"]) == sorted(want)
                assert all(c["op"] == "add" for c in page["changes"])
            # each answer shows its own patching applied on top of the ones before it
            for i, a in enumerate(good):
                mine = patch(i)["patches"][0]["value"]
                assert mine in {f["value"] for f in a.data["profile"]["preferences"]}
            found = await ok(sessions[0], "profile_search", {"query": "likes ada thing", "limit": 1})
            assert found["results"][0]["user_id"] == ada  # re-embedded and re-indexed with every patching
