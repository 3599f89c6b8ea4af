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


def minmax_fusion(lists: Sequence[Sequence[Hit]], weights: Sequence[float] | None = None) -> list[Hit]:
    """Weighted sum of scores rescaled to [0, 1] within each list (a hit missing from a list gets 0).

    Unlike `rrf` it keeps how far apart the scores are, which matters when one list (e.g. BM25 on
    a rare word) is much surer of its top hit than the other. Payload from the first list seen.
    """
    weights = weights or [1.0] * len(lists)
    scores: dict[str, float] = {}
    first: dict[str, Hit] = {}
    for hits, w in zip(lists, weights, strict=True):
        if not hits:
            continue
        top, low = max(h.score for h in hits), min(h.score for h in hits)
        for hit in hits:
            norm = (hit.score - low) / (top - low) if top > low else 1.0
            scores[hit.id] = scores.get(hit.id, 0.0) + w * norm
            first.setdefault(hit.id, hit)
    ordered = sorted(scores, key=scores.__getitem__, reverse=True)
    return [Hit(i, scores[i], first[i].payload, first[i].dense) for i in ordered]
