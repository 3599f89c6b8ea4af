"""BM25 sparse vectors, computed in-process by Qdrant Edge's tokenizer for both backends.

The store applies the IDF modifier, so documents carry term-frequency weights and queries
carry one weight per unique token.
"""

from __future__ import annotations

from functools import lru_cache

from qdrant_edge import Bm25, Bm25Config, SparseVector


@lru_cache(maxsize=1)
def _model() -> Bm25:
    # Short memories, not 256-token pages: the length prior matters for b=0.75 normalisation.
    return Bm25(Bm25Config(avg_len=24.0, language="english"))


def document(text: str) -> SparseVector:
    return _model().embed_document(text)


def query(text: str) -> SparseVector:
    return _model().embed_query(text)
