"""The embedded default: Qdrant Edge in-process (HNSW, payload indexes, BM25 sparse, WAL).

Every write returns only once it is on disk. The update is one record in Qdrant's write-ahead
log, an mmap the kernel keeps through a crash of this process (SIGKILL included) and replays
on the next open; we then fdatasync the log's files, so the write also survives a power cut.
We do not call Edge's `flush()` per write: it also writes every segment and holds Python's
GIL throughout, freezing the whole server, while fdatasync releases it and costs a few
milliseconds (docs/benchmarks.md). Segments are flushed on close, before a
compaction, and at a checkpoint (`_checkpoint`): every `CHECKPOINT_POINTS` points written, and
once per 32 MB log segment written. Until its flush Edge also holds each written point's update
in memory (about 0.9 kB a point, whatever its payload's size): the point count keeps that small,
where the log's roll alone let it grow to tens of MB per store. The log stays at about three segments instead of growing with
every write; a restart after a crash replays the log written since.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import qdrant_edge as qe

from . import bm25
from .base import (
    DENSE,
    SPARSE,
    CollectionSpec,
    DenseQuery,
    Hit,
    Item,
    Query,
    SparseQuery,
    VectorStore,
    Where,
    hit_of,
    named_vectors,
)
from .lock import DirLock

KEPT_SEGMENTS = 1  # closed log segments Edge keeps after a flush; one more means a checkpoint is due
CHECKPOINT_POINTS = 4096  # points written (upserted, changed or deleted) that make a checkpoint due


def _filter(where: Where | None) -> qe.Filter | None:
    if where is None:
        return None
    must: list[Any] = [qe.FieldCondition(k, match=qe.MatchValue(v)) for k, v in where.equals.items()]
    must += [qe.FieldCondition(k, match=qe.MatchAny(list(v))) for k, v in where.any_of.items()]
    must += [qe.FieldCondition(k, match=qe.MatchValue(v)) for k, vs in where.all_of.items() for v in vs]
    if where.either:
        branches = [_filter(w) for w in where.either]
        if None not in branches:  # an empty branch always holds: then so does the whole
            must.append(qe.Filter(should=[b for b in branches if b is not None]))
    must += [
        qe.FieldCondition(k, range=qe.RangeFloat(gte=lo, lte=hi)) for k, (lo, hi) in where.ranges.items()
    ]
    if where.has_ids is not None:
        must.append(qe.HasIdCondition(set(where.has_ids)))
    must_not: list[Any] = [qe.FieldCondition(k, match=qe.MatchValue(v)) for k, v in where.not_equals.items()]
    if not must and not must_not:
        return None
    return qe.Filter(must=must or None, must_not=must_not or None)


class EdgeStore(VectorStore):
    """A collection as one Edge shard in its own directory, locked to this process."""

    def __init__(self, directory: Path, spec: CollectionSpec):
        self.spec = spec
        self.directory = directory
        self._lock = DirLock(directory)
        self._lock.acquire()
        self._write = threading.Lock()
        self._conditional = threading.Lock()  # a conditional write's check and write, one at a time
        self._synced_names: frozenset[str] = frozenset()  # the log's files at the last full sync
        self._unflushed = 0  # points written since the last flush
        self._config = qe.EdgeConfig(
            vectors={DENSE: qe.EdgeVectorParams(size=spec.dim, distance=qe.Distance.Cosine)},
            sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)} if spec.sparse else None,
        )
        try:
            self._shard = self._open()
        except Exception:
            self._lock.release()
            raise

    @property
    def _dir(self) -> Path:
        return self.directory / "shard"

    def _open(self) -> qe.EdgeShard:
        staged = self.directory / "shard.new"
        if staged.exists() and not self._dir.exists():
            staged.rename(self._dir)  # a compaction stopped between its two renames
        shutil.rmtree(staged, ignore_errors=True)
        shutil.rmtree(self.directory / "shard.old", ignore_errors=True)
        if (self._dir / "edge_config.json").exists():
            return self._indexed(qe.EdgeShard.load(str(self._dir)))
        return self._create(self._dir)

    def _create(self, path: Path) -> qe.EdgeShard:
        return self._indexed(qe.EdgeShard.create(str(path), self._config))

    def _indexed(self, shard: qe.EdgeShard) -> qe.EdgeShard:
        """The shard with an index on every field of the spec (a shard written before a field joined
        the spec gets it now)."""
        have = set(shard.info().payload_schema)
        kinds: list[tuple[tuple[str, ...], Any]] = [
            (self.spec.tenant_fields, qe.KeywordIndexParams(is_tenant=True)),
            (self.spec.keyword_fields, qe.PayloadSchemaType.Keyword),
            (self.spec.float_fields, qe.PayloadSchemaType.Float),
        ]
        for names, kind in kinds:
            for name in names:
                if name not in have:
                    shard.update(qe.UpdateOperation.create_field_index(name, kind))
        return shard

    def _durable(self, operation: qe.UpdateOperation, points: int) -> None:
        """Apply one update of `points` points (one WAL record: all of it or, after a crash, none) and
        sync it to disk."""
        with self._write:
            self._shard.update(operation)
            self._unflushed += points
        # outside the lock: a concurrent writer's sync then covers this update too
        wal = self._dir / "wal"
        segments = [*wal.iterdir()]
        names = frozenset(p.name for p in segments)
        if names == self._synced_names:
            # no segment created, closed or dropped since a full sync: only the one being appended to
            # (the lowest open-N; Edge creates the next one ahead, empty) holds anything new
            targets = [min((p for p in segments if p.name.startswith("open-")), key=lambda p: int(p.name[5:]))]
        else:  # every segment, and the folder for the names
            targets = [*segments, wal]
        for path in targets:
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:  # a full segment renamed as it closed (closing syncs it)
                continue
            try:
                (os.fsync if path == wal else os.fdatasync)(fd)
            finally:
                os.close(fd)
        self._synced_names = names
        if self._unflushed >= CHECKPOINT_POINTS or sum(p.name.startswith("closed-") for p in segments) > KEPT_SEGMENTS:
            self._checkpoint()

    def _checkpoint(self) -> None:
        """Write the segments out, so that Edge lets go of the updates it held in memory for them and
        the log can drop what they now hold: without it the log keeps every write since the store was
        opened (on disk, in the mmapped pages counted in RSS, and replayed at the next open)."""
        with self._write:
            if self._unflushed:  # a concurrent writer's checkpoint may have just run
                self._shard.flush()
                self._unflushed = 0

    def upsert(self, items: Sequence[Item], only_new: bool = False, only_if: Where | None = None) -> None:
        with self._conditional:
            items = self.writable(items, only_new, only_if)
            points = [qe.Point(it.id, named_vectors(it, self.spec.sparse), it.payload) for it in items]
            if points:
                self._durable(qe.UpdateOperation.upsert_points(points), len(points))

    def retrieve(self, ids: Sequence[str], with_vectors: bool = False) -> list[Hit]:
        if not ids:
            return []
        recs = self._shard.retrieve(list(ids), with_payload=True, with_vector=[DENSE] if with_vectors else False)
        return [hit_of(r) for r in recs]

    def set_payload(self, ids: Sequence[str], payload: dict[str, Any]) -> None:
        self._durable(qe.UpdateOperation.set_payload(list(ids), payload), len(ids))

    def delete(self, ids: Sequence[str]) -> None:
        if ids:
            self._durable(qe.UpdateOperation.delete_points(list(ids)), len(ids))

    def delete_where(self, where: Where) -> None:
        flt = _filter(where)
        if flt is None:
            raise ValueError("refusing to delete with an empty filter")
        self._durable(qe.UpdateOperation.delete_points_by_filter(flt), 1)

    def _request(self, q: Query, flt: qe.Filter | None, limit: int) -> qe.QueryRequest:
        if isinstance(q, DenseQuery):
            query = qe.Query.Nearest(list(map(float, q.vector)), using=DENSE)
        else:
            assert isinstance(q, SparseQuery)
            query = qe.Query.Nearest(bm25.query(q.text), using=SPARSE)
        return qe.QueryRequest(limit=limit, query=query, filter=flt, with_payload=True)

    def search(self, queries: Sequence[Query], where: Where | None, limit: int) -> list[list[Hit]]:
        flt = _filter(where)
        reqs = [self._request(q, flt, limit) for q in queries]
        if not reqs:
            return []
        results = self._shard.query_batch(qe.QueryBatchRequest(reqs)) if len(reqs) > 1 else [
            self._shard.query(reqs[0])
        ]
        return [[hit_of(p, p.score) for p in res] for res in results]

    def scroll(
        self, where: Where | None, limit: int, offset: str | None = None, with_vectors: bool = False
    ) -> tuple[list[Hit], str | None]:
        recs, nxt = self._shard.scroll(
            qe.ScrollRequest(
                offset=offset,
                limit=limit,
                filter=_filter(where),
                with_payload=True,
                with_vector=[DENSE] if with_vectors else False,
            )
        )
        return [hit_of(r) for r in recs], (str(nxt) if nxt is not None else None)

    def _ordered(self, where: Where | None, key: str, limit: int, descending: bool) -> list[Hit]:
        direction = qe.Direction.Desc if descending else qe.Direction.Asc
        recs, _ = self._shard.scroll(qe.ScrollRequest(limit=limit, filter=_filter(where), with_payload=True,
                                                      order_by=qe.OrderBy(key, direction=direction)))
        return [hit_of(r) for r in recs]

    def count(self, where: Where | None = None) -> int:
        return int(self._shard.count(qe.CountRequest(filter=_filter(where), exact=True)))

    def compact(self) -> None:
        """Copy the live points into a fresh shard and drop the old one.

        Deleted points otherwise survive as bytes in segment pages and in the write-ahead log
        until they happen to be recycled; erasure must not wait for that.
        """
        with self._write:
            self._shard.flush()
            self._unflushed = 0
            staged = self.directory / "shard.new"
            shutil.rmtree(staged, ignore_errors=True)
            fresh = self._create(staged)
            offset = None
            while True:
                recs, offset = self._shard.scroll(
                    qe.ScrollRequest(offset=offset, limit=1000, with_payload=True, with_vector=True)
                )
                if recs:
                    fresh.update(qe.UpdateOperation.upsert_points([qe.Point(r.id, r.vector or {}, r.payload) for r in recs]))
                if offset is None:
                    break
            fresh.flush()
            fresh.close()
            self._shard.close()
            old = self.directory / "shard.old"
            self._dir.rename(old)
            staged.rename(self._dir)
            shutil.rmtree(old)
            self._shard = qe.EdgeShard.load(str(self._dir))

    def close(self) -> None:
        try:
            self._shard.flush()
            self._shard.close()
        finally:
            self._lock.release()

    def collections(self) -> list[str]:
        """The shard folders beside this one (one folder per collection under the server's data folder)."""
        return sorted(p.name for p in self.directory.parent.iterdir() if (p / "shard").is_dir())

    def drop(self) -> None:
        self.close()
        shutil.rmtree(self.directory)
