"""What the memory tools read: searches, newest-first lists, pages in store order, past tool calls."""

from __future__ import annotations

import math

from mcp_servers.core import cursors
from mcp_servers.core.embeddings import Embedder
from mcp_servers.core.errors import UserError
from mcp_servers.core.store import Hit, VectorStore, Where
from mcp_servers.core.store.aio import off_loop

from . import reflection, retrieval, visibility
from .models import ListResult, MemoryItem, SearchResult, ToolExperience

MAX_SEARCH_DEPTH = 200  # results a search pages through; beyond, narrow the query


def _experience(hit: Hit) -> ToolExperience:
    """A recorded call as a past experience; a lesson drawn from several calls carries its text instead."""
    md, p = hit.payload.get("metadata") or {}, hit.payload
    seen = {"id": hit.id, "tool": md.get("tool", "?"), "success": bool(md.get("success")),
            "occurred_at": p.get("occurred_at"), "score": round(hit.score, 6) if hit.score else None}
    if p.get("source") == reflection.DERIVED:
        return ToolExperience(**seen, lesson=p["content"])
    return ToolExperience(**seen, task=md.get("task"), arguments=md.get("arguments") or {}, outcome=md.get("outcome"),
                          latency_ms=md.get("latency_ms"))


def to_item(hit: Hit) -> MemoryItem:
    p = hit.payload
    return MemoryItem(
        id=hit.id,
        content=p["content"],
        scope=p["scope"],
        user_id=p.get("user_id"),
        session_id=p.get("session_id"),
        occurred_at=p.get("occurred_at"),
        created_at=p["created_at"],
        updated_at=p["updated_at"],
        source=p.get("source", "verbatim"),
        metadata=p.get("metadata") or {},
        visibility=visibility.of(p),
        heard_by=p.get("heard_by") or [],
        derived_from=p.get("derived_from") or [],
        score=round(hit.score, 6) if hit.score else None,
    )


class Reading:
    """Reads one avatar's memories, with the filter (`Where`) the caller may see."""

    def __init__(self, store: VectorStore, embedder: Embedder):
        self.store = store
        self.embedder = embedder

    async def search_page(self, where: Where, query: str, limit: int, cursor: str | None) -> SearchResult:
        """A page of what matches `query` best, within `where`."""
        if not query.strip():
            raise UserError("The query is empty.")
        asked = [query, where.model_dump(), limit]
        offset = cursors.decode_offset("memory_search", asked, cursor)
        if offset >= MAX_SEARCH_DEPTH:
            raise UserError(f"Search pages stop at {MAX_SEARCH_DEPTH} results; narrow the query or the time range.")
        items = await self.search(where, query, limit + 1, offset)
        more = len(items) > limit
        return SearchResult(results=items[:limit],
                            next_cursor=cursors.encode("memory_search", asked, offset + limit) if more else None)

    async def list_page(self, where: Where, limit: int, cursor: str | None) -> ListResult:
        """A page of what `where` holds, the most recently occurred first."""
        asked = where.model_dump()
        items, nxt, total = await self.newest_page(where, limit, cursors.decode_mark("memory_list", asked, cursor))
        return ListResult(results=items, next_cursor=cursors.encode("memory_list", asked, nxt and cursors.mark(*nxt)),
                          total=total)

    async def search(self, where: Where, query: str, limit: int, offset: int) -> list[MemoryItem]:
        relevant: set[str] = set()
        hits = await retrieval.search(self.store, self.embedder, query, where, limit, offset, relevant=relevant)
        return [to_item(h).model_copy(update={"relevant": h.id in relevant}) for h in hits]

    async def everything(self, where: Where) -> list[MemoryItem]:
        """Every memory `where` holds, oldest first (as an export lists them)."""
        return await off_loop(self._everything, where)

    def _everything(self, where: Where) -> list[MemoryItem]:
        items = [to_item(h) for h in self.store.every(where)]
        return sorted(items, key=lambda m: (m.occurred_at or "", m.created_at))

    async def newest_page(self, where: Where, limit: int,
                          after: tuple[float, str] | None) -> tuple[list[MemoryItem], tuple[float, str] | None, int]:
        return await off_loop(self._newest_page, where, limit, after)

    def _newest_page(self, where: Where, limit: int,
                     after: tuple[float, str] | None) -> tuple[list[MemoryItem], tuple[float, str] | None, int]:
        """Most recently occurred first. Memories of the same moment come in id order (the store's
        order among equal values is not stable), so a page that ends among them says where to go on."""
        hits: list[Hit] = []
        below = None
        if after is not None:
            hits = self._same_time(where, after[0], limit + 1, after[1])
            below = math.nextafter(after[0], -math.inf)
        if len(hits) <= limit:
            low, high = where.ranges.get("occurred_ts", (None, None))
            top = high if below is None else below if high is None else min(high, below)
            narrowed = where.model_copy(update={"ranges": {**where.ranges, "occurred_ts": (low, top)}})
            more = self.store.highest(narrowed, "occurred_ts", limit + 1 - len(hits))
            if more:  # every time above the last one is there whole: put each in id order
                last = more[-1].payload["occurred_ts"]
                head = sorted((h for h in more if h.payload["occurred_ts"] != last),
                              key=lambda h: (-h.payload["occurred_ts"], h.id))
                hits += head + self._same_time(where, last, len(more) - len(head), None)
        page = hits[:limit]
        nxt = (float(page[-1].payload["occurred_ts"]), page[-1].id) if len(hits) > limit else None
        return [to_item(h) for h in page], nxt, self.store.count(where)

    def _same_time(self, where: Where, at: float, n: int, after_id: str | None) -> list[Hit]:
        """Up to `n` memories that occurred exactly at `at`, in id order, after `after_id`."""
        same = where.model_copy(update={"ranges": {**where.ranges, "occurred_ts": (at, at)}})
        hits, _ = self.store.scroll(same, n + 1, after_id)
        return [h for h in hits if h.id != after_id][:n]

    async def tool_experiences(self, where: Where, task: str, limit: int) -> list[ToolExperience]:
        hits = await retrieval.search(self.store, self.embedder, task, where, limit)
        return [_experience(h) for h in hits]
