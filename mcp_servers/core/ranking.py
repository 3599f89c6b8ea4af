"""Rank fusion above the store, identical for both backends."""

from __future__ import annotations

from collections.abc import Sequence

from .store import Hit


def rrf(lists: Sequence[Sequence[Hit]], weights: Sequence[float] | None = None, k: float = 60.0) -> list[Hit]:
    """Weighted reciprocal-rank fusion: score = Σ w / (k + rank). Payload from the first list seen."""
    weights = weights or [1.0] * len(lists)
    scores: dict[str, float] = {}
    first: dict[str, Hit] = {}
    for hits, w in zip(lists, weights, strict=True):
        for rank, hit in enumerate(hits):
            scores[hit.id] = scores.get(hit.id, 0.0) + w / (k + rank + 1)
            first.setdefault(hit.id, hit)
    ordered = sorted(scores, key=scores.__getitem__, reverse=True)
    return [Hit(i, scores[i], first[i].payload, first[i].dense) for i in ordered]
