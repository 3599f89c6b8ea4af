"""The audit trail as points of a collection in the Qdrant deployment (`QDRANT_URL`): the same calls
as `audit.AuditLog` (record, list, forget), one trail for every replica of a server.

One point per (access, user), no vector; `seq` is the time of the access in microseconds (the
cursor `audit_list` pages by), so entries written by several replicas order by when they happened.
The trail keeps the newest `audit.MAX_ENTRIES` entries, as the SQLite trail does: each replica checks
after every `audit.PRUNE_EVERY` entries it writes and drops the oldest beyond the limit.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable

from . import audit
from .audit import MAX_IDS, AuditEntry, AuditLog, _text
from .store import CollectionSpec, Item, VectorStore, Where

PRUNE_PAGE = 10_000  # entries dropped per store call
AUDIT_SPEC = CollectionSpec("audit", dim=1, sparse=False, tenant_fields=("user_id",), float_fields=("seq",))


class StoreAuditLog(AuditLog):
    """Opens its collection on first use (the server process may start before the deployment answers)."""

    shared = True

    def __init__(self, opener: Callable[[], VectorStore]):  # no SQLite file: AuditLog's own state is unused
        self._opener = opener
        self._store: VectorStore | None = None
        self._lock = threading.Lock()
        self._last = 0
        self._written = 0  # entries this process wrote: the trail is pruned each PRUNE_EVERY of them

    def _open(self) -> VectorStore:
        with self._lock:
            if self._store is None:
                self._store = self._opener()
            return self._store

    def _seq(self) -> int:
        """Microseconds since the epoch, strictly increasing within this process."""
        with self._lock:
            self._last = max(self._last + 1, time.time_ns() // 1000)
            return self._last

    def record(self, users: Iterable[str], client: str, via: str | None, principal: str, kind: str, name: str,
               ok: bool, touched: list[str], ids: dict[str, list[str]]) -> None:
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        seq = self._seq()
        items = [Item(str(uuid.uuid4()), {
            "seq": seq, "at": at, "user_id": _text(u), "client": _text(client), "via": via, "principal": _text(principal), "kind": kind,
            "name": _text(name), "ok": "yes" if ok else "no", "user_ids": [_text(t) for t in touched],
            "ids": [_text(i) for i in ids.get(u, [])[:MAX_IDS]]}) for u in users]
        store = self._open()
        store.upsert(items)
        with self._lock:
            before, self._written = self._written, self._written + len(items)
        if before // audit.PRUNE_EVERY != self._written // audit.PRUNE_EVERY:
            self._prune(store)

    def _prune(self, store: VectorStore) -> None:
        """Drop the oldest entries beyond MAX_ENTRIES, oldest first, a page at a time."""
        while (excess := store.count() - audit.MAX_ENTRIES) > 0:
            store.delete([h.id for h in store.lowest(None, "seq", min(excess, PRUNE_PAGE))])

    def list(self, user_id: str | None, limit: int, before: int | None) -> list[AuditEntry]:
        """Newest first; `user_id` None means every entry (the owner)."""
        where = Where()
        if user_id is not None:
            where.equals["user_id"] = _text(user_id)
        if before is not None:
            where.ranges["seq"] = (None, float(before - 1))
        hits = self._open().latest(where, "seq", limit)
        return [AuditEntry(seq=int(p["seq"]), at=p["at"], client=p["client"], via=p.get("via"), principal=p["principal"], kind=p["kind"],
                           name=p["name"], ok=p["ok"] == "yes", user_ids=p["user_ids"], ids=p["ids"])
                for p in (h.payload for h in hits)]

    def forget(self, user_id: str) -> int:
        store = self._open()
        where = Where(equals={"user_id": user_id})
        n = store.count(where)
        if n:
            store.delete_where(where)
        return n

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


