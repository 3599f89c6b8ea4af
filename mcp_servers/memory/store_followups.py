"""Follow-ups as points of a collection in the Qdrant deployment (`QDRANT_URL`): the same calls as
`followups.Followups`, so every replica lists, updates and erases one set of follow-ups.

One point per follow-up (no vector). Its id comes from its source memory and its sentence, and it is
written insert-only: two replicas that derive the same follow-up (identical adds) write one point,
and a follow-up already marked done is never reset by a second derivation.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime

from mcp_servers.core.store import CollectionSpec, Hit, Item, VectorStore, Where

from .followups import Followups, Found, _aware
from .history import now_iso
from .models import Followup, FollowupStatus

FOLLOWUPS_SPEC = CollectionSpec("followups", dim=1, sparse=False, tenant_fields=("user_id",),
                                keyword_fields=("memory_id", "status"), float_fields=("due_ts",))
_PAGE = 1000


def followup_id(memory_id: str, n: int, text: str) -> str:
    """The same follow-up of the same memory gets the same id on every replica."""
    return str(uuid.uuid5(uuid.NAMESPACE_OID, f"followup|{memory_id}|{n}|{text}"))


class StoreFollowups:
    """The follow-ups of every replica of a memory server; every call blocks (run it off the loop)."""

    def __init__(self, store: VectorStore):
        self.store = store

    def close(self) -> None:
        self.store.close()

    def add(self, user: str, memory_id: str, found: list[Found]) -> list[Followup]:
        now = now_iso()
        items = [Item(followup_id(memory_id, n, f.text), {
            "user_id": user, "memory_id": memory_id, "text": f.text, "kind": f.kind, "due_at": f.due.isoformat(),
            "due_ts": f.due.timestamp(), "status": "open", "created_at": now, "updated_at": now})
            for n, f in enumerate(found)]
        self.store.upsert(items, only_new=True)
        stored = {h.id: h for h in self.store.retrieve([it.id for it in items])}  # whichever replica wrote them
        return [_followup(stored[it.id]) for it in items if it.id in stored]

    def page(self, user: str, due_before: datetime | None, include_done: bool, limit: int,
             offset: int) -> tuple[list[Followup], int]:
        where = Where(equals={"user_id": user})
        if due_before is not None:  # strictly before, as the SQLite book reads it
            where.ranges["due_ts"] = (None, math.nextafter(_aware(due_before).timestamp(), -math.inf))
        if not include_done:
            where.equals["status"] = "open"
        hits = self._all(where)
        hits.sort(key=lambda h: (h.payload["due_ts"], h.id))
        return [_followup(h) for h in hits[offset:offset + limit]], len(hits)

    def get(self, followup_id: str) -> Followup | None:
        try:
            uuid.UUID(followup_id)
        except ValueError:  # not a follow-up id at all
            return None
        hits = self.store.retrieve([followup_id])
        return _followup(hits[0]) if hits else None

    def update(self, followup_id: str, status: FollowupStatus | None, due: datetime | None) -> Followup | None:
        """One payload merge: concurrent updates on other replicas each keep the fields they set."""
        if self.get(followup_id) is None:
            return None
        changes: dict[str, object] = {"updated_at": now_iso()}
        if status is not None:
            changes["status"] = status
        if due is not None:
            changes.update(due_at=_aware(due).isoformat(), due_ts=_aware(due).timestamp())
        self.store.set_payload([followup_id], changes)
        return self.get(followup_id)

    def drop_memories(self, memory_ids: list[str]) -> int:
        """Remove the follow-ups whose source memory is gone."""
        if not memory_ids:
            return 0
        where = Where(any_of={"memory_id": list(memory_ids)})
        n = self.store.count(where)
        if n:
            self.store.delete_where(where)
        return n

    def forget_user(self, user: str) -> int:
        where = Where(equals={"user_id": user})
        n = self.store.count(where)
        self.store.delete_where(where)
        self.store.compact()
        return n

    def reassign(self, user: str, into: str) -> int:
        ids = [h.id for h in self._all(Where(equals={"user_id": user}))]
        if ids:
            self.store.set_payload(ids, {"user_id": into})
        return len(ids)

    def _all(self, where: Where) -> list[Hit]:
        return self.store.every(where, _PAGE)


def _followup(hit: Hit) -> Followup:
    p = hit.payload
    return Followup(id=hit.id, user_id=p["user_id"], memory_id=p["memory_id"], text=p["text"], kind=p["kind"],
                    due_at=p["due_at"], status=p["status"], created_at=p["created_at"], updated_at=p["updated_at"])


FollowupBook = Followups | StoreFollowups
