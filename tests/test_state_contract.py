"""One contract, two homes for what a server keeps beside its vectors: the memory history, the
memory follow-ups and exports, and the audit trail in SQLite (embedded default) and in the Qdrant deployment
(`QDRANT_URL`: here the stand-in, over the wire), so every replica reads and erases the same state.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from qdrant_client import QdrantClient

from mcp_servers.core import audit as audit_mod
from mcp_servers.core.audit import AuditLog
from mcp_servers.core.store import CollectionSpec, Item
from mcp_servers.core.store.server import ServerStore
from mcp_servers.core.store_audit import AUDIT_SPEC, StoreAuditLog
from mcp_servers.memory import exports as exports_mod
from mcp_servers.memory import history as history_mod
from mcp_servers.memory.exports import EXPORTS_SPEC, Exports, FileExports, StoreExports, export_name
from mcp_servers.memory.followups import Followups, Found
from mcp_servers.memory.history import FORGET, HISTORY_SPEC, Event, Histories, History, StoreHistory, now_iso
from mcp_servers.memory.store_followups import FOLLOWUPS_SPEC, FollowupBook, StoreFollowups
from tests.fakes.qdrant_server import FakeQdrant

HOMES = ["sqlite", "qdrant-wire"]


@pytest.fixture(scope="module")
def wire() -> Iterator[str]:
    with FakeQdrant() as q:
        yield q.url


def _server_store(url: str, spec: CollectionSpec, tmp_path: Path) -> ServerStore:
    return ServerStore(QdrantClient(url=url), f"{tmp_path.name}_{spec.name}", spec)


Collections = Callable[[CollectionSpec], ServerStore] | None


@pytest.fixture(params=HOMES)
def collections(request: pytest.FixtureRequest, tmp_path: Path) -> Collections:
    """The home a test runs on: on the wire, a spec's collection on the stand-in; None for SQLite (and files)."""
    if request.param == "sqlite":
        return None
    url = request.getfixturevalue("wire")
    return lambda spec: _server_store(url, spec, tmp_path)


@pytest.fixture
def history(collections: Collections, tmp_path: Path) -> Iterator[Histories]:
    h: Histories = StoreHistory(collections(HISTORY_SPEC)) if collections else History(tmp_path / "history.db")
    yield h
    h.close()


@pytest.fixture
def audit(collections: Collections, tmp_path: Path) -> AuditLog:
    if collections is None:
        return AuditLog(tmp_path / "audit.sqlite")
    return StoreAuditLog(lambda: collections(AUDIT_SPEC))


@pytest.fixture
def followups(collections: Collections, tmp_path: Path) -> Iterator[FollowupBook]:
    book: FollowupBook = (StoreFollowups(collections(FOLLOWUPS_SPEC)) if collections
                          else Followups(tmp_path / "followups.db"))
    yield book
    book.close()


@pytest.fixture
def exports(collections: Collections, tmp_path: Path) -> Iterator[Exports]:
    book: Exports = StoreExports(collections(EXPORTS_SPEC)) if collections else FileExports(tmp_path / "exports")
    yield book
    book.close()


def _ev(mid: str, user: str, event: str = "ADD", new: str = "x") -> Event:
    return Event(mid, user, event, None, new, "mcp", now_iso())


def test_history_marks_commit_abort_and_settle(history: Histories, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(history_mod, "SETTLE_AFTER_S", -1.0)  # every mark counts as a crashed writer's
    done = history.intend([_ev("m1", "ann"), _ev("m1", "ann", "UPDATE", "y")])
    assert history.events("m1") == [], "a pending write is invisible to readers"
    history.commit(done)
    assert [e.event for e in history.events("m1")] == ["ADD", "UPDATE"]
    history.abort(history.intend([_ev("m2", "ann")]))
    assert history.events("m2") == []
    cut = history.intend([_ev("m3", "bob"), _ev("m4", "bob")])
    assert [e.memory_id for e in history.pending()[cut]] == ["m3", "m4"]
    history.resolve(cut, {"m3"})  # the store showed only m3's write happened
    assert history.pending() == {}
    assert [e.event for e in history.events("m3")] == ["ADD"] and history.events("m4") == []


def test_history_moves_and_forgets_a_user(history: Histories) -> None:
    history.commit(history.intend([_ev("m1", "ann"), _ev("m2", "ann"), _ev("m3", "bob")]))
    assert history.has_user("ann") and not history.has_user("cid")
    history.move_user(history.intend([Event("m1", "cid", "REASSIGN", "ann", "cid", "mcp", now_iso())]), "ann", "cid")
    assert not history.has_user("ann") and history.has_user("cid")
    history.intend([Event("", "cid", FORGET, None, None, "mcp", now_iso())])
    assert history.forget_user("cid") == 3  # m1's ADD and REASSIGN, m2's ADD; the FORGET mark goes too
    assert not history.has_user("cid") and history.events("m1") == [] and history.pending() == {}
    assert [e.event for e in history.events("m3")] == ["ADD"]
    history.commit(history.intend([_ev("m3", "", "UPDATE", "z"), _ev("m5", "")]))
    assert history.forget_memories(["m3", "m9"]) == 2  # a record quoting an erased person goes with its events
    assert history.events("m3") == [] and [e.event for e in history.events("m5")] == ["ADD"]


def test_audit_records_pages_and_forgets(audit: AuditLog) -> None:
    for n in range(5):
        audit.record(["ann", "bob"] if n == 0 else ["ann"], "host", "console" if n == 4 else None, "owner", "tool",
                     f"t{n}", True, ["ann"], {"ann": [f"id{n}"]})
        time.sleep(0.002)
    first = audit.list("ann", 3, None)
    assert [e.name for e in first] == ["t4", "t3", "t2"] and first[0].ids == ["id4"] and first[0].ok
    assert [e.via for e in first] == ["console", None, None]
    assert [e.name for e in audit.list("ann", 3, first[-1].seq)] == ["t1", "t0"]
    assert [e.name for e in audit.list("bob", 10, None)] == ["t0"]
    assert len(audit.list(None, 10, None)) == 6
    assert audit.forget("ann") == 5
    assert audit.list("ann", 10, None) == [] and len(audit.list(None, 10, None)) == 1



def test_audit_keeps_the_newest_entries(audit: AuditLog, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit_mod, "MAX_ENTRIES", 5)
    monkeypatch.setattr(audit_mod, "PRUNE_EVERY", 4)
    for n in range(8):  # checked after the 4th write (nothing beyond 5 yet) and after the 8th
        audit.record(["ann"], "host", None, "owner", "tool", f"t{n}", True, ["ann"], {})
    assert [e.name for e in audit.list(None, 20, None)] == ["t7", "t6", "t5", "t4", "t3"]
    audit.record(["ann"], "host", None, "owner", "tool", "t8", True, ["ann"], {})
    assert len(audit.list(None, 20, None)) == 6, "between checks the trail may grow past the limit"


LISBON = timezone(timedelta(hours=1))
MONDAY = datetime(2023, 5, 8, 9, 0, tzinfo=LISBON)


def _due(days: int, text: str) -> Found:
    return Found(text, MONDAY + timedelta(days=days), "event")


def test_followups_page_update_drop_move_and_forget(followups: FollowupBook) -> None:
    exam, trip = followups.add("ann", "m1", [_due(4, "My exam is on Friday."), _due(14, "We fly in two weeks.")])
    [call] = followups.add("ann", "m2", [_due(1, "Remind me to call mum tomorrow.")])
    followups.add("bob", "m3", [_due(2, "Bob's interview is on Wednesday.")])
    page, total = followups.page("ann", None, False, 2, 0)
    assert [f.id for f in page] == [call.id, exam.id] and total == 3
    assert [f.id for f in followups.page("ann", None, False, 2, 2)[0]] == [trip.id]
    before = datetime.fromisoformat(exam.due_at)  # strictly before: the exam itself is not
    assert [f.id for f in followups.page("ann", before, False, 10, 0)[0]] == [call.id]
    done = followups.update(call.id, "done", None)
    assert done is not None and done.status == "done" and done.due_at == call.due_at
    moved = followups.update(exam.id, None, datetime(2023, 5, 13, 10, 0, tzinfo=LISBON))
    assert moved is not None and moved.due_at == "2023-05-13T10:00:00+01:00" and moved.status == "open"
    assert followups.page("ann", None, False, 10, 0)[1] == 2 and followups.page("ann", None, True, 10, 0)[1] == 3
    assert followups.get("not-an-id") is None and followups.update(str(uuid.uuid4()), "done", None) is None
    assert followups.drop_memories(["m1"]) == 2 and followups.get(exam.id) is None
    assert followups.reassign("ann", "cid") == 1
    got = followups.get(call.id)
    assert got is not None and got.user_id == "cid" and followups.page("ann", None, True, 10, 0)[1] == 0
    assert followups.forget_user("cid") == 1 and followups.page("cid", None, True, 10, 0) == ([], 0)
    assert followups.page("bob", None, False, 10, 0)[1] == 1


def test_exports_are_whole_readable_and_forgotten(exports: Exports, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exports_mod, "PART_CHARS", 7)  # many parts, several writes
    text = "# Memories of ann\n\n- one\n- two\n- three: ünïcode\n" * 3
    first, second = export_name("markdown"), export_name("json")
    exports.save("ann", first, text)
    exports.save("ann", second, "[]")
    exports.save("bob", first, "bob's")
    assert exports.read("ann", first) == text and exports.read("ann", second) == "[]"
    assert exports.read("bob", first) == "bob's" and exports.read("cid", first) is None
    assert exports.read("ann", "../../etc/passwd") is None and exports.read("ann", export_name("json")) is None
    assert exports.count("ann") == 2
    assert exports.forget("ann") == 2
    assert exports.read("ann", first) is None and exports.count("ann") == 0 and exports.read("bob", first) == "bob's"


def test_an_export_cut_before_its_manifest_is_not_read_and_is_forgotten(wire: str, tmp_path: Path) -> None:
    """A replica killed between an export's parts and its manifest: nothing readable, and the forget erases it."""
    store = _server_store(wire, EXPORTS_SPEC, tmp_path)
    name = export_name("markdown")
    store.upsert([Item(str(uuid.uuid4()), {"user_id": "ann", "name": name, "kind": "part", "part": 0, "text": "half"})])
    exports = StoreExports(store)
    assert exports.read("ann", name) is None and exports.count("ann") == 0
    exports.forget("ann")
    assert store.count() == 0
    exports.close()
