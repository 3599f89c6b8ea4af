"""Ranking of memories for a query (baseline: hybrid dense + BM25 with reciprocal-rank fusion).

The memory server calls `index_text` when it stores a memory and `search` to answer a query;
both run unchanged on Qdrant Edge and Qdrant server because they use only the store contract.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from mcp_servers.core.embeddings import Embedder
from mcp_servers.core.ranking import rrf
from mcp_servers.core.store import DenseQuery, Hit, SparseQuery, VectorStore, Where

# How many earlier contents of the same session the server passes to `index_text`.
CONTEXT_TURNS = 0
CANDIDATES = 50


def index_text(content: str, occurred_at: datetime | None, context: Sequence[str]) -> str:
    """The text embedded and BM25-indexed for a memory: its date, then its content."""
    if occurred_at is None:
        return content
    return f"[{occurred_at:%d %B %Y}] {content}"


async def search(
    store: VectorStore, embedder: Embedder, query: str, where: Where, limit: int, offset: int = 0
) -> list[Hit]:
    vector = (await embedder.aembed([query]))[0]
    dense, sparse = store.search([DenseQuery(vector), SparseQuery(query)], where, max(CANDIDATES, offset + limit))
    return rrf([dense, sparse])[offset : offset + limit]
