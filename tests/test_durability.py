"""Crash durability: SIGKILL the server while concurrent writes stream in, restart it on the
same data root, and account for every write.

"Acknowledged" means the tool call returned success. After each kill and restart:
- every acknowledged memory_add / memory_add_batch / memory_update / memory_delete,
  corpus_add, profile_update, speaker_enroll and face_enroll is there (or gone, for deletes);
  a write in flight at the kill may or may not be, but never in part: a batch is all or none,
  a document has all its passages, an update is the old text or the new;
- the history records exactly the memories that exist: a present memory's history starts with
  ADD and its last event gives its current text, a deleted memory's history ends with DELETE;
- a `user_merge` in flight is done in full or not at all (samples, facts, history);
- the stores reopen without any repair.

Memory and persona's merges run over stdio (`serve memory`, `serve persona`); HTTP runs
`alphaavatar up` with all four servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest
from mcp import ClientSession

from tests.datasets import FACES, FSDD, file_b64, fsdd, needs_fsdd, wav_b64
from tests.support import call, http_server, http_session, ok, server_env, stdio_session

USER = "dur"


@contextlib.contextmanager
def until_killed() -> Iterator[None]:
    """Run a writer until its server dies (the call raises); a wrong answer before that fails the test."""
    try:
        yield
    except AssertionError:
        raise
    except Exception:  # the connection died with the server
        return


def server_pid(home: Path) -> int:
    """The pid of the server this test started on `home` (a child process of this one)."""
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if child.environ().get("ALPHAAVATAR_HOME") == str(home) and "alphaavatar" in " ".join(child.cmdline()):
                return int(child.pid)
    raise AssertionError(f"no server process found for {home}")


@dataclass
class Enrolments:
    """Enrolment calls sent and acknowledged: the samples stored lie between the two."""

    sent: int = 0
    acked: int = 0


@dataclass
class Ledger:
    """What the clients sent, what was acknowledged, and what may have happened (in flight)."""

    contents: dict[str, set[str]] = field(default_factory=dict)  # memory id -> texts it may hold
    must_exist: set[str] = field(default_factory=set)
    must_be_gone: set[str] = field(default_factory=set)
    maybe_gone: set[str] = field(default_factory=set)  # a delete was in flight at the kill
    batches: dict[str, int] = field(default_factory=dict)  # tag -> items (every batch sent)
    acked_batches: set[str] = field(default_factory=set)
    acked_writes: int = 0
    docs: dict[str, str] = field(default_factory=dict)  # acknowledged doc id -> its token
    prefs: set[str] = field(default_factory=set)  # acknowledged profile values
    voice: Enrolments = field(default_factory=Enrolments)  # clips
    faces: Enrolments = field(default_factory=Enrolments)  # photos


async def memory_writer(s: ClientSession, led: Ledger, rng: random.Random, tag: str) -> None:
    """Adds, batches, updates and deletes of this writer's own memories, until the server dies."""
    mine: list[str] = []
    with until_killed():
        for i in range(100_000):
            op = rng.choices(["add", "batch", "update", "delete"], [45, 20, 25, 10])[0] if mine else "add"
            if op == "add":
                text = f"{tag} memory {i} {uuid.uuid4().hex}"
                r = await call(s, "memory_add", {"content": text, "user_id": USER})
                assert not r.is_error, r.text
                mid = r.data["results"][0]["id"]
                led.contents[mid] = {text}
                led.must_exist.add(mid)
                mine.append(mid)
            elif op == "batch":
                btag = f"batch-{uuid.uuid4().hex}"
                n = rng.randint(2, 6)
                led.batches[btag] = n
                items = [{"content": f"{btag} part {k}", "user_id": USER} for k in range(n)]
                r = await call(s, "memory_add_batch", {"items": items})
                assert not r.is_error, r.text
                led.acked_batches.add(btag)
                for ev, it in zip(r.data["results"], items, strict=True):
                    led.contents[ev["id"]] = {it["content"]}
                    led.must_exist.add(ev["id"])
                    mine.append(ev["id"])
            elif op == "update":
                mid = rng.choice(mine)
                text = f"{tag} updated {i} {uuid.uuid4().hex}"
                before = set(led.contents[mid])
                led.contents[mid] = before | {text}  # in flight: either text
                r = await call(s, "memory_update", {"memory_id": mid, "content": text})
                assert not r.is_error, r.text
                led.contents[mid] = {text}
            else:
                mid = mine.pop(rng.randrange(len(mine)))
                led.must_exist.discard(mid)
                led.maybe_gone.add(mid)
                r = await call(s, "memory_delete", {"memory_id": mid})
                assert not r.is_error, r.text
                led.maybe_gone.discard(mid)
                led.must_be_gone.add(mid)
            led.acked_writes += 1


async def all_memories(s: ClientSession) -> dict[str, str]:
    present: dict[str, str] = {}
    cursor = None
    while True:
        page = await ok(s, "memory_list", {"user_id": USER, "limit": 200, **({"cursor": cursor} if cursor else {})})
        present |= {h["id"]: h["content"] for h in page["results"]}
        cursor = page["next_cursor"]
        if not cursor:
            return present


async def check_memories(s: ClientSession, led: Ledger) -> None:
    present = await all_memories(s)
    lost = led.must_exist - set(present)
    assert not lost, f"{len(lost)} acknowledged memories lost, e.g. {sorted(lost)[:3]}"
    back = led.must_be_gone & set(present)
    assert not back, f"{len(back)} acknowledged deletes undone"
    for mid, text in present.items():
        if mid in led.contents:
            assert text in led.contents[mid], f"{mid} holds {text!r}, never acknowledged nor in flight"
    for btag, n in led.batches.items():  # an acknowledged batch is in must_exist (its items may have changed since)
        if btag not in led.acked_batches:  # in flight at the kill: all of it or none
            stored = sum(1 for text in present.values() if text.startswith(btag))
            assert stored in (0, n), f"batch {btag}: {stored} of {n} items stored (half a batch)"
    for mid, text in present.items():  # the history of what exists
        events = (await ok(s, "memory_history", {"memory_id": mid}))["events"]
        assert events[0]["event"] == "ADD" and events[-1]["event"] != "DELETE", (mid, events)
        assert events[-1]["new"] == text, (mid, text, events)
    for mid in led.must_be_gone | (led.maybe_gone - set(present)):
        events = (await ok(s, "memory_history", {"memory_id": mid}))["events"]
        assert events[-1]["event"] == "DELETE", (mid, events)
    # after a kill, writes in flight are settled: the new process takes new writes at once
    await ok(s, "memory_add", {"content": f"after restart {uuid.uuid4().hex}", "user_id": USER})


async def kill_during(open_writers: Callable[[contextlib.AsyncExitStack], Awaitable[list[Awaitable[None]]]],
                      started: Callable[[], bool], home: Path, delay: float) -> None:
    """Open sessions and start their writers; once `started()` (writes of every kind are being
    acknowledged), SIGKILL the server after `delay` s more and let the writers stop."""
    failure: AssertionError | None = None
    with contextlib.suppress(Exception):  # closing the dead server's sessions may raise
        async with contextlib.AsyncExitStack() as stack:
            try:
                tasks = [asyncio.ensure_future(w) for w in await open_writers(stack)]
                for _ in range(1200):  # the first writes wait for the models to load
                    if started() or all(t.done() for t in tasks):
                        break
                    await asyncio.sleep(0.1)
                await asyncio.sleep(delay)
                os.kill(server_pid(home), signal.SIGKILL)
                outcomes = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 60)
                wrong = [o for o in outcomes if isinstance(o, BaseException)]
                assert not wrong, f"a write failed before the kill: {wrong[0]!r}"
            except AssertionError as exc:
                failure = exc
    if failure is not None:
        raise failure


async def sigkill_rounds_stdio(home: Path, rounds: int, seed: int) -> None:
    rng = random.Random(seed)
    env = server_env(home)
    led = Ledger()
    for rnd in range(rounds):
        async def writers(stack: contextlib.AsyncExitStack, rnd: int = rnd) -> list[Awaitable[None]]:
            s = await stack.enter_async_context(stdio_session("memory", env))
            return [memory_writer(s, led, random.Random(rng.random()), f"r{rnd}w{w}") for w in range(6)]

        def started(start: int = led.acked_writes) -> bool:
            return led.acked_writes >= start + 5

        await kill_during(writers, started, home, rng.uniform(0.2, 2.0))
        async with stdio_session("memory", env) as s:
            await check_memories(s, led)
    assert led.acked_writes >= rounds * 5  # the kills came while writes streamed in
    print(f"stdio: {rounds} SIGKILLs, {led.acked_writes} acknowledged memory writes ({len(led.acked_batches)} batches), "
          "0 lost, no half batch, history exact")


@pytest.mark.parametrize("rounds", [pytest.param(1, id="1-round"),
                                    pytest.param(8, id="8-rounds", marks=pytest.mark.slow)])
async def test_sigkill_stdio_memory_loses_no_acknowledged_write(tmp_path: Path, rounds: int) -> None:
    await sigkill_rounds_stdio(tmp_path, rounds, seed=rounds)


# -- HTTP: `alphaavatar up`, every server writing at once --------------------------------------

Writer = Callable[[], Awaitable[None]]


def persona_writers(s: ClientSession, led: Ledger, user: str, rnd: int) -> list[Writer]:
    clips = [wav_b64(w) for w in fsdd()["george"][:10]] if FSDD.is_dir() else []
    photos = [file_b64(p) for p in sorted((FACES / "obama").glob("*.jpg"))] if FACES.is_dir() else []

    async def profile() -> None:
        with until_killed():
            for i in range(100_000):
                value = f"pref {rnd}-{i} {uuid.uuid4().hex[:8]}"
                await ok(s, "profile_update", {"user_id": user, "patches": [
                    {"op": "add", "field": "preferences", "value": value}]})
                led.prefs.add(value)

    def enrol(tool: str, arg: str, samples: list[str], count: Enrolments) -> Writer:
        async def write() -> None:
            with until_killed():
                for i in range(100_000):
                    count.sent += 1
                    await ok(s, tool, {"user_id": user, arg: samples[i % len(samples)]})
                    count.acked += 1

        return write

    out: list[Writer] = [profile]
    if clips:
        out.append(enrol("speaker_enroll", "audio", clips, led.voice))
    if photos:
        out.append(enrol("face_enroll", "image", photos, led.faces))
    return out


def corpus_writer(s: ClientSession, led: Ledger, rnd: int) -> Writer:
    words = "garden bees roof music travel coffee piano mountain river book film tennis bread winter".split()

    async def corpus() -> None:
        rng = random.Random(rnd)
        with until_killed():
            for i in range(100_000):
                token = f"tok{uuid.uuid4().hex}"
                text = " ".join(rng.choices(words, k=400)) + f" {token}"  # a few passages
                r = await ok(s, "corpus_add", {"text": text, "title": f"durable {rnd}-{i}"})
                led.docs[r["document"]["doc_id"]] = token

    return corpus


async def check_persona(s: ClientSession, led: Ledger, user: str) -> None:
    got = await ok(s, "user_get", {"user_id": user})
    voice = sum(got["voice_samples"].values())
    assert led.voice.acked <= voice <= led.voice.sent, (led.voice, voice)
    assert led.faces.acked <= got["face_samples"] <= led.faces.sent, (led.faces, got["face_samples"])
    prof = await ok(s, "profile_get", {"user_id": user})
    stored = {f["value"] for f in prof["preferences"]}
    assert led.prefs <= stored, f"{len(led.prefs - stored)} acknowledged profile changes lost"
    logged: set[Any] = set()
    cursor = None
    while True:
        page = await ok(s, "profile_history", {"user_id": user, "field": "preferences", "limit": 100,
                                               **({"cursor": cursor} if cursor else {})})
        logged |= {c["new"] for c in page["changes"]}
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert stored == logged, "the profile history does not record exactly the stored values"


async def check_corpus(s: ClientSession, led: Ledger) -> None:
    listed: dict[str, int] = {}
    cursor = None
    while True:
        page = await ok(s, "corpus_list", {"limit": 100, **({"cursor": cursor} if cursor else {})})
        listed |= {d["doc_id"]: d["chunks"] for d in page["documents"]}
        cursor = page["next_cursor"]
        if not cursor:
            break
    lost = set(led.docs) - set(listed)
    assert not lost, f"{len(lost)} acknowledged corpus documents lost"
    for doc_id, token in led.docs.items():  # every passage came with its document
        hits = (await ok(s, "corpus_search", {"query": token, "limit": 3}))["results"]
        assert any(h["doc_id"] == doc_id and token in h["text"] for h in hits), doc_id


async def sigkill_rounds_http(home: Path, rounds: int, seed: int) -> None:
    rng = random.Random(seed)
    env = server_env(home)
    led = Ledger()
    user = ""
    for rnd in range(rounds):
        with http_server(["up"], env) as base:
            async def writers(stack: contextlib.AsyncExitStack, rnd: int = rnd, base: str = base) -> list[Awaitable[None]]:
                nonlocal user
                mem = [await stack.enter_async_context(http_session(f"{base}/memory/mcp")) for _ in range(4)]
                per = await stack.enter_async_context(http_session(f"{base}/persona/mcp"))
                res = await stack.enter_async_context(http_session(f"{base}/research/mcp"))
                user = user or (await ok(per, "user_create", {"name": "Durable Dora"}))["user_id"]
                out = [memory_writer(s, led, random.Random(rng.random()), f"h{rnd}w{w}") for w, s in enumerate(mem)]
                return out + [w() for w in persona_writers(per, led, user, rnd)] + [corpus_writer(res, led, rnd)()]

            start = (led.acked_writes, len(led.prefs), len(led.docs), led.voice.acked, led.faces.acked)

            def started(start: tuple[int, ...] = start) -> bool:
                now = (led.acked_writes, len(led.prefs), len(led.docs), led.voice.acked, led.faces.acked)
                return now[0] >= start[0] + 5 and all(b > a for a, b in zip(start[1:3], now[1:3], strict=True))

            await kill_during(writers, started, home, rng.uniform(0.2, 2.0))
        with http_server(["up"], env) as base:
            async with http_session(f"{base}/memory/mcp") as s:
                await check_memories(s, led)
            async with http_session(f"{base}/persona/mcp") as s:
                await check_persona(s, led, user)
            async with http_session(f"{base}/research/mcp") as s:
                await check_corpus(s, led)
    assert led.acked_writes >= rounds * 5 and led.prefs and led.docs
    print(f"http up: {rounds} SIGKILLs, {led.acked_writes} memory writes, {len(led.prefs)} profile changes, "
          f"{led.voice.acked} voice and {led.faces.acked} face enrolments, {len(led.docs)} corpus documents acknowledged; 0 lost")


@pytest.mark.parametrize("rounds", [pytest.param(1, id="1-round"),
                                    pytest.param(5, id="5-rounds", marks=pytest.mark.slow)])
async def test_sigkill_http_up_loses_no_acknowledged_write(tmp_path: Path, rounds: int) -> None:
    await sigkill_rounds_http(tmp_path, rounds, seed=100 + rounds)


# -- user_merge: all or none across a kill -----------------------------------------------------

PAIRS = 5  # merges per round, sent back to back so that the kill lands inside one


@dataclass
class Pair:
    """Two users made for one merge, and what each held just before it."""

    source: str
    target: str
    before: dict[str, dict[str, Any]] = field(default_factory=dict)  # user id -> snapshot


@dataclass
class Merges:
    pairs: list[Pair] = field(default_factory=list)
    acked: set[str] = field(default_factory=set)  # source ids whose merge returned
    merging: bool = False


async def snapshot(s: ClientSession, user_id: str) -> dict[str, Any] | None:
    """What a user holds (samples, preferences, history ids), or None once they are gone."""
    got = await call(s, "user_get", {"user_id": user_id})
    if got.is_error:
        assert "No user" in got.text, got.text
        return None
    prefs = [f["value"] for f in (await ok(s, "profile_get", {"user_id": user_id}))["preferences"]]
    history: list[str] = []
    cursor = None
    while True:
        page = await ok(s, "profile_history", {"user_id": user_id, "limit": 100, **({"cursor": cursor} if cursor else {})})
        history += [c["id"] for c in page["changes"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    return {"voice": got.data["voice_samples"], "face": got.data["face_samples"], "prefs": sorted(prefs),
            "history": history}


def merged(source: dict[str, Any], target: dict[str, Any]) -> dict[str, Any]:
    """What the target holds after the merge: every sample, each preference once, both histories
    plus the merge's two records (the one preference added, the user merged away)."""
    voice = {k: source["voice"].get(k, 0) + target["voice"].get(k, 0) for k in source["voice"] | target["voice"]}
    return {"voice": voice, "face": source["face"] + target["face"], "prefs": sorted({*source["prefs"], *target["prefs"]}),
            "history": len(source["history"]) + len(target["history"]) + 2}


async def merge_writer(s: ClientSession, m: Merges, rnd: int, clips: list[str], photo: str | None) -> None:
    """Make PAIRS pairs of users (voices, a face, preferences: one shared, one each), then merge them
    one after the other until the server dies."""
    pairs = []
    for i in range(PAIRS):
        src = str((await ok(s, "user_create", {"name": f"From {rnd}-{i}"}))["user_id"])
        tgt = str((await ok(s, "user_create", {"name": f"Into {rnd}-{i}"}))["user_id"])
        await ok(s, "speaker_enroll", {"user_id": src, "audio": clips[:2]})
        await ok(s, "speaker_enroll", {"user_id": tgt, "audio": clips[2:3]})
        if photo:
            await ok(s, "face_enroll", {"user_id": src, "image": photo})
        for uid, own in ((src, "from"), (tgt, "into")):
            await ok(s, "profile_update", {"user_id": uid, "patches": [
                {"op": "add", "field": "preferences", "value": v} for v in (f"shared {rnd}-{i}", f"{own} {rnd}-{i}")]})
        pair = Pair(src, tgt)
        for uid in (src, tgt):
            pair.before[uid] = await snapshot(s, uid) or {}
        pairs.append(pair)
    m.pairs += pairs
    m.merging = True
    with until_killed():
        for pair in pairs:
            r = await ok(s, "user_merge", {"user_id": pair.source, "into_user_id": pair.target})
            assert r["facts_added"] == 1, r
            m.acked.add(pair.source)


async def check_merges(s: ClientSession, m: Merges) -> tuple[int, int]:
    """Each merge is done in full or not at all; (done, not done)."""
    done = 0
    for pair in m.pairs:
        src, tgt = pair.before[pair.source], pair.before[pair.target]
        after_src, after_tgt = await snapshot(s, pair.source), await snapshot(s, pair.target)
        assert after_tgt is not None, f"merge target {pair.target} lost"
        if after_src is None:  # done: everything on the target, once
            done += 1
            want = merged(src, tgt)
            got = {**after_tgt, "history": len(after_tgt["history"])}
            assert got == want, f"half a merge of {pair.source}: {got} != {want}"
            assert {*src["history"], *tgt["history"]} <= set(after_tgt["history"]), "history entries lost"
            assert len(set(after_tgt["history"])) == len(after_tgt["history"]), "history entries doubled"
        else:  # not done: both users exactly as they were
            assert pair.source not in m.acked, f"acknowledged merge of {pair.source} undone"
            assert (after_src, after_tgt) == (src, tgt), f"half a merge of {pair.source}: {after_src}, {after_tgt}"
    return done, len(m.pairs) - done


@needs_fsdd
@pytest.mark.parametrize("rounds", [pytest.param(2, id="2-rounds"),
                                    pytest.param(6, id="6-rounds", marks=pytest.mark.slow)])
async def test_sigkill_during_user_merge_leaves_all_or_none(tmp_path: Path, rounds: int) -> None:
    """Rounds of: restart, check the merges the last kill cut across, make new pairs, merge them
    back to back, SIGKILL at a random moment (one server start per round: each costs seconds)."""
    rng = random.Random(7)
    env = server_env(tmp_path)
    clips = [wav_b64(w) for w in fsdd()["george"][:3]]
    photo = file_b64(sorted((FACES / "obama").glob("*.jpg"))[0]) if FACES.is_dir() else None
    done, undone, unacked_done = 0, 0, 0

    async def check(s: ClientSession, m: Merges) -> None:
        nonlocal done, undone, unacked_done
        d, u = await check_merges(s, m)
        done, undone, unacked_done = done + d, undone + u, unacked_done + d - len(m.acked)

    last: Merges | None = None
    for rnd in range(rounds):
        m = Merges()

        async def writers(stack: contextlib.AsyncExitStack, m: Merges = m, last: Merges | None = last,
                          rnd: int = rnd) -> list[Awaitable[None]]:
            s = await stack.enter_async_context(stdio_session("persona", env))
            if last is not None:  # the first calls after a restart: a merge the kill cut is finished already
                await check(s, last)
            return [merge_writer(s, m, rnd, clips, photo)]

        def merging(m: Merges = m) -> bool:
            return m.merging

        await kill_during(writers, merging, tmp_path, rng.uniform(0.0, 0.12))
        last = m
    assert last is not None
    async with stdio_session("persona", env) as s:
        await check(s, last)
    assert undone < rounds * PAIRS  # the kills came while merges streamed in
    print(f"user_merge: {rounds} SIGKILLs during {rounds * PAIRS} merges: {done} done in full ({unacked_done} of "
          f"them not acknowledged), {undone} not at all, none in part")


async def test_a_forget_cut_after_its_mark_is_finished_on_restart_follow_ups_included(tmp_path: Path) -> None:
    """A crash right after a forget's FORGET mark was written: the next start erases the rest, the
    user's follow-ups and exports among it."""
    from mcp_servers.memory.history import FORGET, Event, History, now_iso

    env = server_env(tmp_path)
    async with stdio_session("memory", env) as s:
        await ok(s, "memory_add", {"content": "Zed: My exam is on Friday.", "user_id": "zed", "infer": False,
                                   "occurred_at": "2023-05-08T13:56:00+01:00"})
        await ok(s, "memory_export", {"user_id": "zed"})
        assert (await ok(s, "followup_list", {"user_id": "zed"}))["total"] == 1
    marks = History(tmp_path / "memory" / "history.db")  # what the cut forget had written, and nothing more
    marks.intend([Event("", "zed", FORGET, None, None, "mcp", now_iso())])
    marks.close()
    async with stdio_session("memory", env) as s:
        assert (await ok(s, "followup_list", {"user_id": "zed", "include_done": True}))["total"] == 0
        assert (await ok(s, "memory_list", {"user_id": "zed"}))["results"] == []
    assert not any((tmp_path / "memory" / "exports").rglob("*.md"))


async def test_a_reassignment_cut_after_the_memories_moved_moves_follow_ups_on_restart(tmp_path: Path) -> None:
    """A crash after a reassignment's one store write, before its mark was cleared: the next start moves
    the history and the follow-ups too."""
    from mcp_servers.core.store.edge import EdgeStore
    from mcp_servers.memory.history import REASSIGN, Event, History, now_iso
    from mcp_servers.memory.records import memories_spec

    env = server_env(tmp_path)
    async with stdio_session("memory", env) as s:
        added = await ok(s, "memory_add", {"content": "Yan: My exam is on Friday.", "user_id": "yan", "infer": False,
                                           "occurred_at": "2023-05-08T13:56:00+01:00"})
        mid = added["results"][0]["id"]

    def cut() -> None:  # what the cut reassignment had written: its mark, then its one store write
        marks = History(tmp_path / "memory" / "history.db")
        marks.intend([Event(mid, "zoe", REASSIGN, "yan", "zoe", "mcp", now_iso())])
        marks.close()
        store = EdgeStore(tmp_path / "memory" / "memories", memories_spec(384))
        store.set_payload([mid], {"user_id": "zoe", "updated_at": now_iso()})
        store.close()

    await asyncio.to_thread(cut)
    async with stdio_session("memory", env) as s:
        assert (await ok(s, "followup_list", {"user_id": "yan"}))["total"] == 0
        moved = await ok(s, "followup_list", {"user_id": "zoe"})
        assert [f["memory_id"] for f in moved["results"]] == [mid]
        assert [e["event"] for e in (await ok(s, "memory_history", {"memory_id": mid}))["events"]] == ["ADD", "REASSIGN"]
