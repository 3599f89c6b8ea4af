"""Users, their profiles and the history of every change, in one core-store collection.

A user is a point whose id is the user id (or, for an id of the caller's own such as 'alice', a
UUID derived from it): payload = name, provisional flag, facts; BM25 text =
the rendered profile; dense vector = its text embedding (only once the profile says more than a
name). Each change is a payload-only point with a time-ordered id, so history pages come back in
order. Erasure deletes both kinds by user id; the store is then compacted. A merge under way is a
third kind (`MergeIntent`), written before the merge's first write and dropped with its last.

Every method is async and reaches the store off the event loop (`aio.off_loop`), one hop each.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from typing import Any

from pydantic import BaseModel

from mcp_servers.core import cursors
from mcp_servers.core.embeddings import Embedder
from mcp_servers.core.params import MAX_USER_ID
from mcp_servers.core.ranking import rrf
from mcp_servers.core.store import CollectionSpec, DenseQuery, Hit, Item, Query, SparseQuery, VectorStore, Where
from mcp_servers.core.store.aio import off_loop

from .profile import render


def people_spec(dim: int) -> CollectionSpec:
    return CollectionSpec(name="people", dim=dim, sparse=True, tenant_fields=("user_id",),
                          keyword_fields=("kind", "field", "status"))


_last_id = 0
_id_lock = threading.Lock()


def time_id() -> str:
    """A UUIDv7, strictly increasing within this process: the store's id order is history order."""
    global _last_id
    with _id_lock:
        value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
        value = (value & ~(0xF << 76)) | (0x7 << 76)
        value = (value & ~(0x3 << 62)) | (0x2 << 62)
        if value <= _last_id:
            value = _last_id + 1
        _last_id = value
    return str(uuid.UUID(int=value))


_ID_SPACE = uuid.UUID("6f1c3a8e-6a52-4c41-9a3e-2b8f0d6c1e57")  # namespace of user-chosen ids


def valid_id(user_id: str) -> bool:
    try:
        return str(uuid.UUID(user_id)) == user_id.lower()
    except (ValueError, AttributeError):
        return False


def well_formed(user_id: str) -> bool:
    """A user id is a UUID we made or an id of the caller's own (the same id on every server): 1–200 printable
    characters."""
    return isinstance(user_id, str) and 0 < len(user_id) <= MAX_USER_ID and user_id.isprintable() and user_id.strip() == user_id


def point_id(user_id: str) -> str:
    """The store point of a user: their id when it is a UUID, else a UUID derived from it (the store's
    point ids are UUIDs), so that the same name is the same user on every server."""
    return user_id if valid_id(user_id) else str(uuid.uuid5(_ID_SPACE, user_id))


class MergeIntent(BaseModel):
    """A merge under way, stored before its first write: the target's new profile and history records
    are fixed here (ids included), so finishing the merge again after a crash writes them once."""

    id: str
    from_user: str
    into_user: str
    user: dict[str, Any]  # the target as the merge leaves it
    changes: list[dict[str, Any]]  # its new history records, each with its id
    facts_added: int


class People:
    def __init__(self, store: VectorStore, embedder: Embedder):
        self.store = store
        self.embedder = embedder

    async def get(self, user_id: str) -> dict[str, Any] | None:
        if not well_formed(user_id):
            return None
        hits = await off_loop(self.store.retrieve, [point_id(user_id)])
        found = hits[0].payload if hits else None
        return found if found and found.get("kind") == "user" and found.get("user_id") == user_id else None

    async def names(self, user_ids: list[str]) -> dict[str, dict[str, Any]]:
        ids = [point_id(u) for u in dict.fromkeys(user_ids) if well_formed(u)]
        hits = await off_loop(self.store.retrieve, ids)
        return {h.payload["user_id"]: h.payload for h in hits if h.payload.get("kind") == "user"}

    async def commit(self, user: dict[str, Any], changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Write a user and append its changes to the history in one store write (both or, after a
        crash, neither); the change records as stored (with their ids). A change that brings its own
        id keeps it, so writing the same changes twice stores them once."""
        return (await self.commit_many([(user, changes)]))[0]

    async def commit_many(self, writes: list[tuple[dict[str, Any], list[dict[str, Any]]]]) -> list[list[dict[str, Any]]]:
        """`commit` for several (user, changes) at once, in one store write and one embedding call; a
        user given twice is stored as its last version, with both sets of changes.

        A profile text is re-embedded only when it changed (and says more than a name).
        """
        last = {user["user_id"]: user for user, _ in writes}
        texts = {uid: render(user["facts"]) for uid, user in last.items()}
        described = [uid for uid, user in last.items() if any(f["field"] != "identity.name" for f in user["facts"])]
        dense: dict[str, list[float]] = {}
        if described:
            old = {h.id: h for h in await off_loop(self.store.retrieve, [point_id(u) for u in described], with_vectors=True)}
            for uid in described:
                kept = old.get(point_id(uid))
                if kept is not None and kept.dense is not None and kept.payload.get("text") == texts[uid]:
                    dense[uid] = kept.dense
            fresh = [uid for uid in described if uid not in dense]
            if fresh:
                vectors = await self.embedder.aembed([texts[uid] for uid in fresh])
                dense |= {uid: v.tolist() for uid, v in zip(fresh, vectors, strict=True)}
        rows = [[{"id": time_id(), "kind": "change", "user_id": user["user_id"], **c} for c in changes]
                for user, changes in writes]
        # `status` mirrors `provisional` for filtering (the Edge store matches no booleans).
        items = [Item(point_id(uid), {**user, "text": texts[uid], "status": "provisional" if user.get("provisional") else "named"},
                      dense=dense.get(uid), text=texts[uid]) for uid, user in last.items()]
        items += [Item(r["id"], {k: v for k, v in r.items() if k != "id"}) for user_rows in rows for r in user_rows]
        await off_loop(self.store.upsert, items)
        return rows

    async def history(self, user_id: str, field: str | None, limit: int,
                      cursor: str | None) -> tuple[list[Hit], str | None]:
        where = Where(equals={"kind": "change", "user_id": user_id, **({"field": field} if field else {})})
        return await self._page("profile_history", where, limit, cursor)

    async def page(self, limit: int, cursor: str | None, *, provisional: bool | None,
                   only: str | None) -> tuple[list[Hit], str | None]:
        where = Where(equals={"kind": "user"})
        if provisional is not None:
            where.equals["status"] = "provisional" if provisional else "named"
        if only is not None:
            where.equals["user_id"] = only
        return await self._page("user_list", where, limit, cursor)

    async def _page(self, listing: str, where: Where, limit: int, cursor: str | None) -> tuple[list[Hit], str | None]:
        asked = where.model_dump()
        hits, nxt = await off_loop(self.store.scroll, where, limit, cursors.decode_id(listing, asked, cursor))
        return hits, cursors.encode(listing, asked, nxt)

    async def count(self, *, provisional: bool | None = None) -> int:
        where = Where(equals={"kind": "user"})
        if provisional is not None:
            where.equals["status"] = "provisional" if provisional else "named"
        return await off_loop(self.store.count, where)

    async def search(self, query: str, limit: int, *, only: str | None) -> list[Hit]:
        """Users whose profile matches the query by meaning and by words (hybrid, RRF)."""
        where = Where(equals={"kind": "user", **({"user_id": only} if only else {})})
        vec = (await self.embedder.aembed([query]))[0].tolist()
        queries: list[Query] = [DenseQuery(vec), SparseQuery(query)]
        dense, sparse = await off_loop(self.store.search, queries, where, limit * 2)
        return rrf([dense, sparse])[:limit]

    async def move_history(self, source: str, target: str) -> int:
        """Give one user's history to another (merge), in pages of 500; how many entries moved."""
        return await off_loop(self._move_history, source, target)

    def _move_history(self, source: str, target: str) -> int:
        moved, offset = 0, None
        while True:
            hits, offset = self.store.scroll(Where(equals={"kind": "change", "user_id": source}), 500, offset)
            if hits:
                self.store.set_payload([h.id for h in hits], {"user_id": target})
                moved += len(hits)
            if offset is None:
                return moved

    async def intend_merge(self, intent: MergeIntent) -> None:
        """Store a merge before its first write (durably: the store syncs each write)."""
        await off_loop(self.store.upsert, [Item(intent.id, {"kind": "merge", **intent.model_dump(exclude={"id"})})])

    async def pending_merges(self) -> list[MergeIntent]:
        """The merges a crash cut, oldest first (each one holds the write lock to its end, so at most one)."""
        hits, _ = await off_loop(self.store.scroll, Where(equals={"kind": "merge"}), 100)
        return [MergeIntent(id=h.id, **{k: v for k, v in h.payload.items() if k != "kind"}) for h in hits]

    async def end_merge(self, intent: MergeIntent) -> None:
        """The last step of a merge: the merged user's point and the intent go in one write."""
        await off_loop(self.store.delete, [point_id(intent.from_user), intent.id])

    async def erase(self, user_id: str) -> int:
        """Delete the user and their whole history; how many history entries went."""
        return await off_loop(self._erase, user_id)

    def _erase(self, user_id: str) -> int:
        n = self.store.count(Where(equals={"kind": "change", "user_id": user_id}))
        self.store.delete_where(Where(equals={"user_id": user_id}))
        return n
