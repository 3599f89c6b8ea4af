"""The change history of every memory, in SQLite with secure deletion (erasure leaves no bytes).

The history and the vector store are two files, so a write touches them in a fixed order that
a crash cannot tear: the events go in first, durably, marked with the id of their store write
(`txn`); then the store write runs (and flushes); then the mark is cleared. When the store opens
after a crash, `pending()` lists what was marked and the service keeps each event the store
shows happened and drops the others, so the history records exactly the memories that exist.
An erasure is marked the same way (a FORGET event) and is finished on the next start.

With `QDRANT_URL` set the history lives in the Qdrant deployment instead (`StoreHistory`, the same
calls), so every replica reads and erases one history.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mcp_servers.core.store import CollectionSpec, Hit, Item, VectorStore, Where

from .models import HistoryEvent

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  memory_id TEXT NOT NULL,
  user_id TEXT,
  event TEXT NOT NULL,
  old TEXT,
  new TEXT,
  at TEXT NOT NULL,
  actor TEXT
);
CREATE INDEX IF NOT EXISTS events_memory ON events(memory_id);
CREATE INDEX IF NOT EXISTS events_user ON events(user_id);
"""

FORGET = "FORGET"
REASSIGN = "REASSIGN"  # a memory moved to another user: `old` is the user it came from, `new` the one it went to


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


@dataclass(frozen=True)
class Event:
    """One row to write: `at` is the memory's `updated_at` after the change (ADD, UPDATE) or the
    time of the deletion, so that recovery can tell whether the store holds this change."""

    memory_id: str
    user_id: str | None
    event: str
    old: str | None
    new: str | None
    actor: str | None
    at: str


def open_db(path: Path, schema: str) -> sqlite3.Connection:
    """A SQLite file of the memory server: erased bytes overwritten, a commit on disk when it returns."""
    db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA secure_delete=ON")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.executescript(schema)
    return db


class History:
    def __init__(self, path: Path):
        self._db = open_db(path, SCHEMA)
        self._lock = threading.Lock()
        with self._lock:
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(events)")}
            if "txn" not in columns:  # a history written before writes were marked
                self._db.execute("ALTER TABLE events ADD COLUMN txn TEXT")
            self._db.execute("CREATE INDEX IF NOT EXISTS events_txn ON events(txn) WHERE txn IS NOT NULL")

    def intend(self, rows: Sequence[Event]) -> str:
        """Write events marked as pending, in one durable transaction; the mark to `commit`."""
        txn = uuid.uuid4().hex
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT INTO events(memory_id, user_id, event, old, new, at, actor, txn) VALUES (?,?,?,?,?,?,?,?)",
                [(r.memory_id, r.user_id, r.event, r.old, r.new, r.at, r.actor, txn) for r in rows],
            )
        return txn

    def commit(self, txn: str) -> None:
        """Clear the mark. Not synced: if a crash loses this, recovery finds the store holds the change
        and clears it again (the next synced commit carries it to disk anyway)."""
        with self._lock:
            self._db.execute("PRAGMA synchronous=NORMAL")
            try:
                self._db.execute("UPDATE events SET txn=NULL WHERE txn=?", (txn,))
            finally:
                self._db.execute("PRAGMA synchronous=FULL")

    def abort(self, txn: str) -> None:
        """Drop the events of a store write that failed (nothing of it was acknowledged)."""
        with self._lock:
            self._db.execute("DELETE FROM events WHERE txn=?", (txn,))

    def pending(self) -> dict[str, list[Event]]:
        """Events of store writes that a crash may have cut, by mark, in the order written."""
        with self._lock:
            cur = self._db.execute(
                "SELECT txn, memory_id, user_id, event, old, new, actor, at FROM events WHERE txn IS NOT NULL ORDER BY seq"
            )
            out: dict[str, list[Event]] = {}
            for txn, *fields in cur.fetchall():
                out.setdefault(txn, []).append(Event(*fields))
            return out

    def resolve(self, txn: str, keep: set[str]) -> None:
        """Keep the pending events of `txn` whose memory is in `keep`; drop the rest."""
        with self._lock, self._db:
            self._db.execute("BEGIN")
            rows = self._db.execute("SELECT seq, memory_id FROM events WHERE txn=?", (txn,)).fetchall()
            drop = [(seq,) for seq, mid in rows if mid not in keep]
            self._db.executemany("DELETE FROM events WHERE seq=?", drop)
            self._db.execute("UPDATE events SET txn=NULL WHERE txn=?", (txn,))

    def events(self, memory_id: str, limit: int = 100) -> list[HistoryEvent]:
        with self._lock:
            cur = self._db.execute(
                "SELECT event, old, new, at, actor FROM events WHERE memory_id=? AND txn IS NULL ORDER BY seq LIMIT ?",
                (memory_id, limit),
            )
            return [HistoryEvent(event=e, old=o, new=n, at=at, actor=a) for e, o, n, at, a in cur.fetchall()]

    def has_user(self, user_id: str) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM events WHERE user_id=? LIMIT 1", (user_id,)).fetchone() is not None

    def move_user(self, txn: str, from_user: str, into_user: str) -> int:
        """Give `from_user`'s events to `into_user` and clear the mark of the reassignment, in one transaction."""
        with self._lock, self._db:
            self._db.execute("BEGIN")
            n = self._db.execute("UPDATE events SET user_id=? WHERE user_id=?", (into_user, from_user)).rowcount
            self._db.execute("UPDATE events SET txn=NULL WHERE txn=?", (txn,))
            return int(n)

    def forget_memories(self, memory_ids: Sequence[str]) -> int:
        """Delete the events of these memories (secure_delete zeroes them; `forget_user` vacuums after)."""
        with self._lock, self._db:
            return sum(self._db.execute(f"DELETE FROM events WHERE memory_id IN ({','.join('?' * len(chunk))})",
                                        chunk).rowcount for chunk in _chunks(memory_ids))

    def forget_user(self, user_id: str) -> int:
        """Delete the user's events (and the FORGET mark), then checkpoint and vacuum so no page keeps them."""
        with self._lock:
            n = self._db.execute("DELETE FROM events WHERE user_id=? AND event != ?", (user_id, FORGET)).rowcount
            self._db.execute("DELETE FROM events WHERE user_id=?", (user_id,))
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.execute("VACUUM")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            return int(n)

    def close(self) -> None:
        with self._lock:
            self._db.close()


HISTORY_SPEC = CollectionSpec("history", dim=1, sparse=False, tenant_fields=("user_id",),
                              keyword_fields=("memory_id", "txn", "event"), float_fields=("ts",))
SETTLE_AFTER_S = 60.0  # a replica's write intent older than this is a crashed write's, for any replica to settle


class StoreHistory:
    """The same history as points of a collection in the Qdrant deployment (`QDRANT_URL`), for many
    replicas: one event per point (no vector), `txn` the pending mark ("" once settled). Any replica
    settles a crashed replica's marks once they are `SETTLE_AFTER_S` old; younger ones are a live
    replica's write in flight, which readers never see (they read settled events only)."""

    def __init__(self, store: VectorStore):
        self.store = store
        self._marked: dict[str, tuple[list[str], set[str]]] = {}  # this process's open marks: event and memory ids

    def _where(self, **equals: str) -> Where:
        return Where(equals=dict(equals))

    def _ids(self, where: Where) -> list[str]:
        return [h.id for h in self.store.every(where)]

    def intend(self, rows: Sequence[Event]) -> str:
        txn = uuid.uuid4().hex
        base = time.time()
        ids = [str(uuid.uuid4()) for _ in rows]
        self.store.upsert([Item(i, {
            "memory_id": r.memory_id, "user_id": r.user_id or "", "event": r.event, "old": r.old, "new": r.new,
            "at": r.at, "actor": r.actor, "txn": txn, "ts": base + n * 1e-6}) for n, (i, r) in enumerate(zip(ids, rows, strict=True))])
        self._marked[txn] = (ids, {r.memory_id for r in rows})
        return txn

    def commit(self, txn: str) -> None:
        mine = self._marked.pop(txn, None)
        ids = mine[0] if mine is not None else self._ids(self._where(txn=txn))  # else a mark another process left
        if ids:
            self.store.set_payload(ids, {"txn": ""})

    def abort(self, txn: str) -> None:
        self._marked.pop(txn, None)
        self.store.delete_where(self._where(txn=txn))

    def pending(self) -> dict[str, list[Event]]:
        where = Where(not_equals={"txn": ""}, ranges={"ts": (None, time.time() - SETTLE_AFTER_S)})
        out: dict[str, list[Hit]] = {}
        cursor: str | None = None
        while True:
            hits, cursor = self.store.scroll(where, 1000, cursor)
            for h in hits:
                out.setdefault(h.payload["txn"], []).append(h)
            if cursor is None:
                break
        return {txn: [_event(h) for h in sorted(hits, key=lambda h: h.payload["ts"])] for txn, hits in out.items()}

    def resolve(self, txn: str, keep: set[str]) -> None:
        if txn in self._marked and not self._marked[txn][1] - keep:  # all of it happened
            self.commit(txn)
            return
        self._marked.pop(txn, None)
        hits, _ = self.store.scroll(self._where(txn=txn), 10_000)
        drop = [h.id for h in hits if h.payload["memory_id"] not in keep]
        self.store.delete(drop)
        self.commit(txn)

    def events(self, memory_id: str, limit: int = 100) -> list[HistoryEvent]:
        hits, _ = self.store.scroll(self._where(memory_id=memory_id, txn=""), 10_000)
        hits.sort(key=lambda h: h.payload["ts"])
        return [HistoryEvent(event=p["event"], old=p.get("old"), new=p.get("new"), at=p["at"], actor=p.get("actor"))
                for p in (h.payload for h in hits[:limit])]

    def has_user(self, user_id: str) -> bool:
        return self.store.count(self._where(user_id=user_id)) > 0

    def move_user(self, txn: str, from_user: str, into_user: str) -> int:
        """Give `from_user`'s events to `into_user`, then clear the mark (a crash between is settled by
        `recover`, which repeats the move)."""
        ids = self._ids(self._where(user_id=from_user))
        if ids:
            self.store.set_payload(ids, {"user_id": into_user})
        self.commit(txn)
        return len(ids)

    def forget_memories(self, memory_ids: Sequence[str]) -> int:
        n = 0
        for chunk in _chunks(memory_ids):
            where = Where(any_of={"memory_id": list(chunk)})
            n += self.store.count(where)
            self.store.delete_where(where)
        return n

    def forget_user(self, user_id: str) -> int:
        n = self.store.count(Where(equals={"user_id": user_id}, not_equals={"event": FORGET}))
        self.store.delete_where(self._where(user_id=user_id))
        self.store.compact()
        return n

    def close(self) -> None:
        self.store.close()


def _event(hit: Hit) -> Event:
    p = hit.payload
    return Event(p["memory_id"], p["user_id"], p["event"], p.get("old"), p.get("new"), p.get("actor"), p["at"])


Histories = History | StoreHistory


def _chunks(ids: Sequence[str], size: int = 500) -> list[list[str]]:
    return [list(ids[i : i + size]) for i in range(0, len(ids), size)]
