"""The local corpus: documents split into passages, indexed dense + BM25 in the core store.

One collection holds a `doc` record per document (title, source, counts: what corpus_list
pages through) and its `chunk` points (the passages search ranks). A document and its passages
are written in one upsert after everything was validated and embedded, and erased together.
Owner "" is the shared corpus; a user's own documents carry their user id.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Sequence

import anyio
from pydantic import BaseModel, Field

from mcp_servers.core import audit, cursors
from mcp_servers.core.embeddings import get_embedder
from mcp_servers.core.errors import Forbidden, NotFound, UserError
from mcp_servers.core.ranking import rrf
from mcp_servers.core.settings import Settings
from mcp_servers.core.store import (
    CollectionSpec,
    DenseQuery,
    Hit,
    Item,
    Query,
    SparseQuery,
    VectorStore,
    Where,
    open_store,
)
from mcp_servers.core.store.aio import off_loop

from .chunking import passages
from .config import ResearchSettings

SHARED = ""
# Fusion of the dense and BM25 passage lists (tuned on LoCoMo dev sessions: BM25 carries names
# and rare words, dense the paraphrases; a small k lets the best few ranks dominate).
DENSE_WEIGHT, SPARSE_WEIGHT, RRF_K = 1.0, 1.5, 10.0
SUBQUERY_WEIGHT = 0.5  # extra sub-queries refine, the question itself leads
CANDIDATES = 60


class DocInfo(BaseModel):
    doc_id: str
    title: str
    source: str = Field(description="'text', the file path or the URL it came from.")
    source_type: str = Field(description="text | file | url")
    chunks: int
    chars: int
    added_at: float
    user_id: str | None = Field(default=None, description="Owner; None for the shared corpus.")


class PassageHit(BaseModel):
    doc_id: str
    title: str
    source: str
    chunk: int
    text: str
    score: float


def _doc_info(payload: dict[str, object]) -> DocInfo:
    return DocInfo(
        doc_id=str(payload["doc_id"]), title=str(payload["title"]), source=str(payload["source"]),
        source_type=str(payload["source_type"]), chunks=int(payload["chunks"]),  # type: ignore[call-overload]
        chars=int(payload["chars"]), added_at=float(payload["added_at"]),  # type: ignore[call-overload, arg-type]
        user_id=str(payload["owner"]) or None,
    )


def visible(user_id: str | None) -> list[str]:
    """Owners whose documents a caller acting for `user_id` sees: the shared corpus and their own."""
    return [SHARED, user_id] if user_id else [SHARED]


class Corpus:
    """The corpus's operations. Every store call goes through `off_loop`: the store refuses the event loop."""

    def __init__(self, settings: Settings, research: ResearchSettings):
        self.settings = settings
        self.research = research
        self.embedder = get_embedder(settings)
        self._store: VectorStore | None = None
        self._lock = anyio.Lock()

    @property
    def store(self) -> VectorStore:
        if self._store is None:
            self._store = open_store(self.settings, "research", CollectionSpec(
                "corpus", self.embedder.dim, sparse=True, keyword_fields=("kind", "owner", "doc_id", "sha")))
        return self._store

    async def open(self) -> None:
        await off_loop(lambda: self.store)

    async def close(self) -> None:
        if self._store is not None:
            await off_loop(self._store.close)
            self._store = None

    async def add(self, text: str, title: str, source: str, source_type: str, owner: str | None) -> tuple[DocInfo, bool]:
        """Index a document; (its info, True) if this owner already had the same text."""
        text = text.strip()
        if not text:
            raise UserError("The document has no text to index.")
        if len(text) > self.research.max_document_chars:
            raise UserError(f"The document has {len(text):,} characters; the limit is "
                            f"{self.research.max_document_chars:,} (ALPHAAVATAR_RESEARCH_MAX_DOCUMENT_CHARS).")
        owner_key = owner or SHARED
        sha = hashlib.sha256(text.encode()).hexdigest()

        def same() -> list[Hit]:
            return self.store.scroll(Where(equals={"kind": "doc", "owner": owner_key, "sha": sha}), 1)[0]

        if found := await off_loop(same):
            return _doc_info(found[0].payload), True
        parts = passages(text, self.research.chunk_words)
        vectors = await self.embedder.aembed(parts)
        doc_id = str(uuid.uuid4())
        base = {"doc_id": doc_id, "owner": owner_key, "title": title, "source": source}
        items = [Item(str(uuid.uuid5(uuid.UUID(doc_id), str(i))), {**base, "kind": "chunk", "chunk": i, "text": part},
                      dense=vectors[i].tolist(), text=f"{title}\n{part}" if i == 0 else part)
                 for i, part in enumerate(parts)]
        record = {**base, "kind": "doc", "source_type": source_type, "chunks": len(parts), "chars": len(text),
                  "added_at": time.time(), "sha": sha}
        items.append(Item(doc_id, record))
        async with self._lock:  # the same text sent twice at once is still one document
            if found := await off_loop(same):
                return _doc_info(found[0].payload), True
            await off_loop(self.store.upsert, items)  # durable when it returns
        return _doc_info(record), False

    async def search(self, queries: Sequence[str], user_id: str | None, limit: int) -> list[PassageHit]:
        """Passages for these queries (the first leads), dense + BM25 fused by weighted RRF."""
        vectors = await self.embedder.aembed(list(queries))
        reqs: list[Query] = []
        weights: list[float] = []
        for i, (q, v) in enumerate(zip(queries, vectors, strict=True)):
            w = 1.0 if i == 0 else SUBQUERY_WEIGHT
            reqs += [DenseQuery(v.tolist()), SparseQuery(q)]
            weights += [DENSE_WEIGHT * w, SPARSE_WEIGHT * w]
        where = Where(equals={"kind": "chunk"}, any_of={"owner": visible(user_id)})
        lists = await off_loop(self.store.search, reqs, where, max(CANDIDATES, limit))
        return [PassageHit(doc_id=str(h.payload["doc_id"]), title=str(h.payload["title"]),
                           source=str(h.payload["source"]), chunk=int(h.payload["chunk"]),
                           text=str(h.payload["text"]), score=h.score)
                for h in rrf(lists, weights, k=RRF_K)[:limit]]

    async def list(self, user_id: str | None, limit: int, cursor: str | None) -> tuple[list[DocInfo], str | None, int]:
        where = Where(equals={"kind": "doc"}, any_of={"owner": visible(user_id)})
        asked = where.model_dump()
        offset = cursors.decode_id("corpus_list", asked, cursor)

        def page() -> tuple[list[Hit], str | None, int]:
            return *self.store.scroll(where, limit, offset=offset), self.store.count(where)

        hits, nxt, total = await off_loop(page)
        return [_doc_info(h.payload) for h in hits], cursors.encode("corpus_list", asked, nxt), total

    async def empty(self) -> bool:
        return await off_loop(self.store.count) == 0

    async def get(self, doc_id: str) -> DocInfo:
        try:
            uuid.UUID(doc_id)
        except ValueError:
            raise NotFound(f"No document {doc_id!r} (document ids are UUIDs; see corpus_list).") from None
        found = await off_loop(self.store.retrieve, [doc_id])
        if not found or found[0].payload.get("kind") != "doc":
            raise NotFound(f"No document {doc_id!r} in the corpus (see corpus_list).")
        return _doc_info(found[0].payload)

    async def delete(self, doc_id: str, acting_for: str | None, full_access: bool) -> DocInfo:
        """Erase a document and its passages (compacted: no bytes left behind)."""
        doc = await self.get(doc_id)
        if not full_access and doc.user_id != acting_for:
            audit.concerns(doc.user_id)  # another user's document: the attempt goes on their trail
            if doc.user_id is None:
                raise Forbidden("This token is scoped to one user and cannot delete shared corpus documents.")
            raise NotFound(f"No document {doc_id!r} in the corpus (see corpus_list).")
        async with self._lock:
            await off_loop(self._erase, Where(equals={"doc_id": doc_id}))
        return doc

    async def forget(self, user_id: str) -> int:
        """Erase every document of this user and its passages (compacted); how many documents."""
        mine = Where(equals={"owner": user_id})
        async with self._lock:
            return await off_loop(self._erase, mine, Where(equals={"kind": "doc", "owner": user_id}))

    def _erase(self, where: Where, counted: Where | None = None) -> int:
        """Delete what `where` matches and compact; the number of points `counted` matched before."""
        n = self.store.count(counted) if counted is not None else 0
        self.store.delete_where(where)
        self.store.compact()
        return n
