"""Voiceprints and face encodings in the core store: one point per sample; for voices, one centroid
per user too (the mean of the enrolment utterances makes the steadiest template).

Samples keep their source: 'enroll' (given by a tool call), 'provisional' (the first utterance of a
voice nobody had enrolled), 'adapted' (a confident match, kept only when asked). Adapted samples
are bounded in number and together weigh at most a third of the centroid, and can be dropped
again, so adaptation never drifts far from what was enrolled and is reversible.

Every method is async and reaches the store off the event loop (`aio.off_loop`), one hop per
method: a read-compute-write such as `add` runs as one sync helper on the worker thread.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import numpy as np

from mcp_servers.core.store import CollectionSpec, DenseQuery, Hit, Item, VectorStore, Where
from mcp_servers.core.store.aio import off_loop

from .profile import now
from .vectors import unit

ADAPTED = "adapted"
MAX_ADAPTED_WEIGHT = 1 / 3
MAX_SAMPLES = 2000  # per user and modality; enrolment refuses more


def prints_spec(modality: str, model: str, dim: int) -> CollectionSpec:
    return CollectionSpec(name=f"{modality}_{model}", dim=dim, sparse=False, tenant_fields=("user_id",),
                          keyword_fields=("kind", "source"))


def centroid_id(user_id: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"alphaavatar:centroid:{user_id}"))


class Prints:
    """The samples of one modality (one model) for every user."""

    def __init__(self, store: VectorStore, *, centroids: bool, max_adapted: int):
        self.store = store
        self.centroids = centroids
        self.max_adapted = max_adapted

    def _samples(self, user_id: str, *, with_vectors: bool = False) -> list[Hit]:
        hits, _ = self.store.scroll(Where(equals={"user_id": user_id, "kind": "sample"}), MAX_SAMPLES,
                                    with_vectors=with_vectors)
        return hits

    async def count(self, user_id: str) -> int:
        """How many samples a user has (counted by the store, no payloads read)."""
        return await off_loop(self.store.count, Where(equals={"user_id": user_id, "kind": "sample"}))

    async def counts(self, user_id: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for hit in await off_loop(self._samples, user_id):
            out[hit.payload["source"]] = out.get(hit.payload["source"], 0) + 1
        return out

    async def add(self, user_id: str, vectors: Sequence[np.ndarray], source: str,
                  meta: Sequence[dict[str, object]]) -> None:
        """Store samples and the centroid they make in one write (both or, after a crash, neither)."""
        await off_loop(self._add, user_id, vectors, source, meta)

    def _add(self, user_id: str, vectors: Sequence[np.ndarray], source: str, meta: Sequence[dict[str, object]]) -> None:
        at = now()
        new = [Item(str(uuid.uuid4()), {"user_id": user_id, "kind": "sample", "source": source, "created_at": at, **m},
                    dense=[float(x) for x in v])
               for v, m in zip(vectors, meta, strict=True)]
        old = self._samples(user_id, with_vectors=self.centroids)
        victims: list[str] = []
        if source == ADAPTED:  # the oldest adapted samples beyond the bound make way
            adapted = sorted((h for h in old if h.payload["source"] == ADAPTED), key=lambda h: h.payload["created_at"])
            victims = [h.id for h in adapted[: max(0, len(adapted) + len(new) - self.max_adapted)]]
        kept = [(h.payload["source"], h.dense) for h in old if h.id not in victims]
        centroid = self._centroid(user_id, kept + [(source, it.dense) for it in new])
        self.store.upsert(new + ([centroid] if centroid else []))
        self.store.delete(victims)  # after a crash before this, a few extra adapted samples stay: harmless

    def _centroid(self, user_id: str, samples: Sequence[tuple[str, Sequence[float] | None]]) -> Item | None:
        """The centroid point of these (source, vector) samples (None without centroids or samples)."""
        if not self.centroids or not samples:
            return None
        adapted = [np.asarray(v) for src, v in samples if src == ADAPTED and v]
        enrolled = [np.asarray(v) for src, v in samples if src != ADAPTED and v]
        if enrolled and adapted:
            w = min(len(adapted) / (len(adapted) + len(enrolled)), MAX_ADAPTED_WEIGHT)
            vec = (1 - w) * unit(np.mean(unit(np.stack(enrolled)), axis=0)) + w * unit(
                np.mean(unit(np.stack(adapted)), axis=0))
        else:
            vec = np.mean(unit(np.stack(enrolled or adapted)), axis=0)
        return Item(centroid_id(user_id), {"user_id": user_id, "kind": "centroid", "samples": len(samples),
                                           "updated_at": now()}, dense=[float(x) for x in unit(vec)])

    def _refresh(self, user_id: str) -> None:
        """Recompute a user's centroid from their samples (or drop it when none is left)."""
        if not self.centroids:
            return
        centroid = self._centroid(user_id, [(h.payload["source"], h.dense) for h in self._samples(user_id, with_vectors=True)])
        if centroid is None:
            self.store.delete([centroid_id(user_id)])
        else:
            self.store.upsert([centroid])

    async def rank(self, vectors: Sequence[np.ndarray], limit: int = 5, user_id: str | None = None) -> list[list[tuple[str, float]]]:
        """Per query vector, (user_id, score) best first: the centroid's score for voices, the best
        sample's for faces. One round trip for all queries."""
        where = Where(equals={"kind": "centroid" if self.centroids else "sample"})
        if user_id is not None:
            where.equals["user_id"] = user_id
        depth = limit if self.centroids else limit * 8
        results = await off_loop(self.store.search, [DenseQuery([float(x) for x in v]) for v in vectors], where, depth)
        ranked = []
        for hits in results:
            best: dict[str, float] = {}
            for hit in hits:
                uid = hit.payload["user_id"]
                best[uid] = max(best.get(uid, -1.0), hit.score)
            ranked.append(sorted(best.items(), key=lambda kv: kv[1], reverse=True)[:limit])
        return ranked

    async def drop(self, user_id: str, source: str | None = None) -> int:
        """Delete a user's samples (of one source, or all) and refresh the centroid; how many went."""
        return await off_loop(self._drop, user_id, source)

    def _drop(self, user_id: str, source: str | None) -> int:
        victims = [h.id for h in self._samples(user_id) if source is None or h.payload["source"] == source]
        self.store.delete(victims)
        self._refresh(user_id)
        return len(victims)

    async def move(self, source_user: str, target_user: str) -> int:
        """Give every sample of one user to another (merge); both centroids follow."""
        return await off_loop(self._move, source_user, target_user)

    def _move(self, source_user: str, target_user: str) -> int:
        hits = self._samples(source_user)
        if hits:
            self.store.set_payload([h.id for h in hits], {"user_id": target_user})
        self._refresh(source_user)
        self._refresh(target_user)
        return len(hits)

    async def erase(self, user_id: str) -> int:
        """Delete everything of a user (compact the store afterwards for erasure); how many samples went."""
        return await off_loop(self._erase, user_id)

    def _erase(self, user_id: str) -> int:
        where = Where(equals={"user_id": user_id})
        n = self.store.count(Where(equals={"user_id": user_id, "kind": "sample"}))
        self.store.delete_where(where)
        return n
