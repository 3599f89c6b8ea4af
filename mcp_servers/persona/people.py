"""Users, their profiles and the history of every change, in one core-store collection.

A user is a point whose id is the user id: payload = name, provisional flag, facts; BM25 text =
the rendered profile; dense vector = its text embedding (only once the profile says more than a
name). Each change is a payload-only point with a time-ordered id, so history pages come back in
order. Erasure deletes both kinds by user id; the store is then compacted.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from typing import Any

from mcp_servers.core import cursors
from mcp_servers.core.embeddings import Embedder
from mcp_servers.core.ranking import rrf
from mcp_servers.core.store import CollectionSpec, DenseQuery, Hit, Item, Query, SparseQuery, VectorStore, Where

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


def valid_id(user_id: str) -> bool:
    try:
        return str(uuid.UUID(user_id)) == user_id.lower()
    except (ValueError, AttributeError):
        return False


class People:
    def __init__(self, store: VectorStore, embedder: Embedder):
        self.store = store
        self.embedder = embedder

    def get(self, user_id: str) -> dict[str, Any] | None:
        if not valid_id(user_id):
            return None
        hits = self.store.retrieve([user_id])
        return hits[0].payload if hits and hits[0].payload.get("kind") == "user" else None

    def names(self, user_ids: list[str]) -> dict[str, dict[str, Any]]:
        ids = [u for u in dict.fromkeys(user_ids) if valid_id(u)]
        return {h.id: h.payload for h in self.store.retrieve(ids) if h.payload.get("kind") == "user"}

    async def save(self, user: dict[str, Any]) -> None:
        """Write a user; re-embed the profile text only when it changed (and says more than a name)."""
        text = render(user["facts"])
        dense = None
        if any(f["field"] != "identity.name" for f in user["facts"]):
            old = self.store.retrieve([user["user_id"]], with_vectors=True)
            if old and old[0].dense is not None and old[0].payload.get("text") == text:
                dense = old[0].dense
            else:
                dense = (await self.embedder.aembed([text]))[0].tolist()
        # `status` mirrors `provisional` for filtering (the Edge store matches no booleans).
        status = "provisional" if user.get("provisional") else "named"
        self.store.upsert([Item(user["user_id"], {**user, "text": text, "status": status}, dense=dense, text=text)])

    def record(self, user_id: str, changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Append changes to a user's history; the records as stored (with their ids)."""
        rows = [{"id": time_id(), "kind": "change", "user_id": user_id, **c} for c in changes]
        self.store.upsert([Item(r["id"], {k: v for k, v in r.items() if k != "id"}) for r in rows])
        return rows

    def history(self, user_id: str, field: str | None, limit: int, cursor: str | None) -> tuple[list[Hit], str | None]:
        where = Where(equals={"kind": "change", "user_id": user_id, **({"field": field} if field else {})})
        return self._page("profile_history", where, limit, cursor)

    def page(self, limit: int, cursor: str | None, provisional: bool | None, only: str | None) -> tuple[list[Hit], str | None]:
        where = Where(equals={"kind": "user"})
        if provisional is not None:
            where.equals["status"] = "provisional" if provisional else "named"
        if only is not None:
            where.equals["user_id"] = only
        return self._page("user_list", where, limit, cursor)

    def _page(self, listing: str, where: Where, limit: int, cursor: str | None) -> tuple[list[Hit], str | None]:
        asked = where.model_dump()
        hits, nxt = self.store.scroll(where, limit, cursors.decode_id(listing, asked, cursor))
        return hits, cursors.encode(listing, asked, nxt)

    def count(self, provisional: bool | None = None) -> int:
        where = Where(equals={"kind": "user"})
        if provisional is not None:
            where.equals["status"] = "provisional" if provisional else "named"
        return self.store.count(where)

    async def search(self, query: str, limit: int, only: str | None) -> list[Hit]:
        """Users whose profile matches the query by meaning and by words (hybrid, RRF)."""
        where = Where(equals={"kind": "user", **({"user_id": only} if only else {})})
        vec = (await self.embedder.aembed([query]))[0].tolist()
        queries: list[Query] = [DenseQuery(vec), SparseQuery(query)]
        dense, sparse = self.store.search(queries, where, limit * 2)
        return rrf([dense, sparse])[:limit]

    def move_history(self, source: str, target: str) -> int:
        moved, offset = 0, None
        while True:
            hits, offset = self.store.scroll(Where(equals={"kind": "change", "user_id": source}), 500, offset)
            if hits:
                self.store.set_payload([h.id for h in hits], {"user_id": target})
                moved += len(hits)
            if offset is None:
                return moved

    def erase(self, user_id: str) -> int:
        """Delete the user and their whole history; how many history entries went."""
        n = self.store.count(Where(equals={"kind": "change", "user_id": user_id}))
        self.store.delete_where(Where(equals={"user_id": user_id}))
        return n
