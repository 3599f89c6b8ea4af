"""Qdrant server / cluster via `qdrant-client`: the path for users who outgrow one machine.

Several stateless HTTP replicas of our servers can share one collection here; there is no
directory lock because the Qdrant server arbitrates concurrent writers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qdrant_client import QdrantClient
from qdrant_client import models as m
from qdrant_client.http.exceptions import UnexpectedResponse

from . import bm25
from .base import DENSE, SPARSE, CollectionSpec, DenseQuery, Hit, Item, Query, VectorStore, Where, hit_of, named_vectors


def _filter(where: Where | None) -> m.Filter | None:
    if where is None:
        return None
    must: list[Any] = [m.FieldCondition(key=k, match=m.MatchValue(value=v)) for k, v in where.equals.items()]
    must += [m.FieldCondition(key=k, match=m.MatchAny(any=list(v))) for k, v in where.any_of.items()]
    must += [m.FieldCondition(key=k, match=m.MatchValue(value=v)) for k, vs in where.all_of.items() for v in vs]
    if where.either:
        branches = [_filter(w) for w in where.either]
        if None not in branches:  # an empty branch always holds: then so does the whole
            must.append(m.Filter(should=[b for b in branches if b is not None]))
    must += [m.FieldCondition(key=k, range=m.Range(gte=lo, lte=hi)) for k, (lo, hi) in where.ranges.items()]
    if where.has_ids is not None:
        must.append(m.HasIdCondition(has_id=list(where.has_ids)))
    must_not: list[Any] = [
        m.FieldCondition(key=k, match=m.MatchValue(value=v)) for k, v in where.not_equals.items()
    ]
    if not must and not must_not:
        return None
    return m.Filter(must=must or None, must_not=must_not or None)


def _sparse(vec: Any) -> m.SparseVector:
    return m.SparseVector(indices=list(vec.indices), values=list(vec.values))


class ServerStore(VectorStore):
    """A collection on a Qdrant server (or qdrant-client's local mode, which speaks the same API)."""

    shared = True

    def __init__(self, client: QdrantClient, collection: str, spec: CollectionSpec):
        self.spec = spec
        self.client = client
        self.collection = collection
        if not client.collection_exists(collection):
            try:
                client.create_collection(
                    collection,
                    vectors_config={DENSE: m.VectorParams(size=spec.dim, distance=m.Distance.COSINE)},
                    sparse_vectors_config={SPARSE: m.SparseVectorParams(modifier=m.Modifier.IDF)}
                    if spec.sparse
                    else None,
                )
            except (UnexpectedResponse, ValueError):
                if not client.collection_exists(collection):  # not another replica creating it at the same time
                    raise
        # every field of the spec indexed, also in a collection written before the field joined it
        have = set(client.get_collection(collection).payload_schema or {})
        kinds: list[tuple[tuple[str, ...], Any]] = [
            (spec.tenant_fields, m.KeywordIndexParams(type=m.KeywordIndexType.KEYWORD, is_tenant=True)),
            (spec.keyword_fields, m.PayloadSchemaType.KEYWORD),
            (spec.float_fields, m.PayloadSchemaType.FLOAT),
        ]
        for names, kind in kinds:
            for name in names:
                if name not in have:
                    client.create_payload_index(collection, name, kind)

    def upsert(self, items: Sequence[Item], only_new: bool = False, only_if: Where | None = None) -> None:
        points = []
        for it in items:
            vector = named_vectors(it, self.spec.sparse)
            if SPARSE in vector:
                vector[SPARSE] = _sparse(vector[SPARSE])
            points.append(m.PointStruct(id=it.id, vector=vector, payload=it.payload))
        if points:
            self.client.upsert(self.collection, points, wait=True, update_filter=_filter(only_if) if not only_new else None,
                               update_mode=m.UpdateMode.INSERT_ONLY if only_new else None)

    def retrieve(self, ids: Sequence[str], with_vectors: bool = False) -> list[Hit]:
        if not ids:
            return []
        recs = self.client.retrieve(
            self.collection, list(ids), with_payload=True, with_vectors=[DENSE] if with_vectors else False
        )
        return [hit_of(r) for r in recs]

    def set_payload(self, ids: Sequence[str], payload: dict[str, Any]) -> None:
        self.client.set_payload(self.collection, payload, points=list(ids), wait=True)

    def delete(self, ids: Sequence[str]) -> None:
        if ids:
            self.client.delete(self.collection, m.PointIdsList(points=list(ids)), wait=True)

    def delete_where(self, where: Where) -> None:
        flt = _filter(where)
        if flt is None:
            raise ValueError("refusing to delete with an empty filter")
        self.client.delete(self.collection, m.FilterSelector(filter=flt), wait=True)

    def _request(self, q: Query, flt: m.Filter | None, limit: int) -> m.QueryRequest:
        if isinstance(q, DenseQuery):
            return m.QueryRequest(
                query=list(map(float, q.vector)), using=DENSE, filter=flt, limit=limit, with_payload=True
            )
        return m.QueryRequest(
            query=_sparse(bm25.query(q.text)), using=SPARSE, filter=flt, limit=limit, with_payload=True
        )

    def search(self, queries: Sequence[Query], where: Where | None, limit: int) -> list[list[Hit]]:
        flt = _filter(where)
        if not queries:
            return []
        responses = self.client.query_batch_points(
            self.collection, [self._request(q, flt, limit) for q in queries]
        )
        return [[hit_of(p, p.score) for p in r.points] for r in responses]

    def scroll(
        self, where: Where | None, limit: int, offset: str | None = None, with_vectors: bool = False
    ) -> tuple[list[Hit], str | None]:
        recs, nxt = self.client.scroll(
            self.collection,
            scroll_filter=_filter(where),
            limit=limit,
            offset=offset,
            with_payload=True,
            with_vectors=[DENSE] if with_vectors else False,
        )
        return [hit_of(r) for r in recs], (str(nxt) if nxt is not None else None)

    def _ordered(self, where: Where | None, key: str, limit: int, descending: bool) -> list[Hit]:
        direction = m.Direction.DESC if descending else m.Direction.ASC
        recs, _ = self.client.scroll(self.collection, scroll_filter=_filter(where), limit=limit, with_payload=True,
                                     order_by=m.OrderBy(key=key, direction=direction))
        return [hit_of(r) for r in recs]

    def count(self, where: Where | None = None) -> int:
        return int(self.client.count(self.collection, count_filter=_filter(where), exact=True).count)

    def latest(self, where: Where | None, key: str, limit: int) -> list[Hit]:
        """Ordered by the server (`order_by` on the field's range index): the highest."""
        return self.highest(where, key, limit)

    def compact(self) -> None:
        """The server vacuums deleted points itself; nothing of ours stays on this machine."""

    def close(self) -> None:
        self.client.close()

    def collections(self) -> list[str]:
        """The server's collections with this one's prefix (`alphaavatar_<server>_`), without it."""
        prefix = self.collection.removesuffix(self.spec.name)
        names = [c.name for c in self.client.get_collections().collections]
        return sorted(n.removeprefix(prefix) for n in names if n.startswith(prefix))

    def drop(self) -> None:
        try:
            self.client.delete_collection(self.collection)
        finally:
            self.close()
