"""One small vector-store contract with two implementations (Qdrant Edge embedded, Qdrant server).

Servers speak only this contract, so every feature runs on both backends. Ranking beyond one
vector search (fusion, re-ranking) lives above the store, in plain Python, for the same reason.
"""

from __future__ import annotations

import asyncio
import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field, field_validator

from . import bm25

DENSE = "dense"
SPARSE = "bm25"


class Where(BaseModel):
    """A payload filter both backends understand: all conditions must hold."""

    equals: dict[str, str | int] = Field(default_factory=dict)
    any_of: dict[str, list[str]] = Field(default_factory=dict)
    all_of: dict[str, list[str]] = Field(default_factory=dict, description="field (a list) -> values it holds, every one")
    not_equals: dict[str, str | int] = Field(default_factory=dict)
    ranges: dict[str, tuple[float | None, float | None]] = Field(
        default_factory=dict, description="field -> (gte, lte); either bound may be None"
    )
    has_ids: list[str] | None = None
    either: list[Where] = Field(default_factory=list, description="at least one of these filters holds too")

    @field_validator("equals", "not_equals", mode="before")
    @classmethod
    def _no_booleans(cls, value: dict[str, object]) -> dict[str, object]:
        # Qdrant Edge 0.9 matches a Python bool as the integer 1/0, never a JSON true/false:
        # refuse rather than silently match nothing. Store a keyword ("yes"/"no") instead.
        if any(isinstance(v, bool) for v in value.values()):
            raise ValueError("filters cannot match booleans on every backend; store a keyword instead")
        return value


@dataclass(frozen=True)
class CollectionSpec:
    """What a collection stores and which payload fields are indexed."""

    name: str
    dim: int
    sparse: bool = True
    tenant_fields: tuple[str, ...] = ()
    keyword_fields: tuple[str, ...] = ()
    float_fields: tuple[str, ...] = ()


@dataclass
class Item:
    """A point to write: dense vector, text for the BM25 sparse vector, payload."""

    id: str
    payload: dict[str, Any]
    dense: Sequence[float] | None = None
    text: str | None = None


@dataclass
class Hit:
    id: str
    score: float
    payload: dict[str, Any] = field(default_factory=dict)
    dense: list[float] | None = None


@dataclass(frozen=True)
class DenseQuery:
    vector: Sequence[float]


@dataclass(frozen=True)
class SparseQuery:
    text: str


Query = DenseQuery | SparseQuery


def hit_of(record: Any, score: float = 0.0) -> Hit:
    """A point as either backend returns it (id, payload, the vectors asked for) as a Hit, read one way."""
    vectors = record.vector
    dense = vectors.get(DENSE) if isinstance(vectors, dict) else None
    return Hit(str(record.id), float(score), dict(record.payload or {}), list(dense) if dense is not None else None)


def named_vectors(item: Item, sparse: bool) -> dict[str, Any]:
    """An item's dense vector and, when the collection has one, its BM25 document vector, by name."""
    vector: dict[str, Any] = {}
    if item.dense is not None:
        vector[DENSE] = list(map(float, item.dense))
    if sparse and item.text:
        vector[SPARSE] = bm25.document(item.text)
    return vector


class StoreOnLoopError(RuntimeError):
    """A store call was made on an event loop's thread: it would stall every request the server holds."""


def _off_loop_only(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return method(*args, **kwargs)
        raise StoreOnLoopError(f"VectorStore.{method.__name__} called on the event loop; await it through "
                               "mcp_servers.core.store.aio.off_loop (or run the whole helper there)")

    return guarded


class VectorStore(ABC):
    """A collection of points with a dense vector, an optional BM25 sparse vector, and a payload.

    Each write call is one atomic operation (after a crash: all of it or none) and returns only
    once it is durable, so a caller may acknowledge it right away.

    One async policy: no store call runs on an event loop. A call can take milliseconds on Edge
    and a network round trip on a Qdrant server, and the loop serves every client at once. Every
    operation of every backend refuses to run on a loop's thread (StoreOnLoopError), so the rule
    holds by construction; async code awaits `aio.off_loop(...)`.
    """

    spec: CollectionSpec
    shared = False  # True: other processes may write this collection at once (writers then write conditionally)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in _OPERATIONS:
            if name in cls.__dict__:
                setattr(cls, name, _off_loop_only(cls.__dict__[name]))

    @abstractmethod
    def upsert(self, items: Sequence[Item], only_new: bool = False, only_if: Where | None = None) -> None:
        """Write points. A conditional write (for writers on several processes) leaves an existing point
        as it is when `only_new`, or unless it matches `only_if`; points that do not exist are written.
        The check and the write are one atomic step; read the points back to learn which were written."""

    @abstractmethod
    def retrieve(self, ids: Sequence[str], with_vectors: bool = False) -> list[Hit]: ...

    @abstractmethod
    def set_payload(self, ids: Sequence[str], payload: dict[str, Any]) -> None:
        """Merge keys into the payload of these points."""

    @abstractmethod
    def delete(self, ids: Sequence[str]) -> None: ...

    @abstractmethod
    def delete_where(self, where: Where) -> None: ...

    @abstractmethod
    def search(self, queries: Sequence[Query], where: Where | None, limit: int) -> list[list[Hit]]:
        """Run several queries under one filter in one round trip; one ranked list per query."""

    @abstractmethod
    def scroll(
        self, where: Where | None, limit: int, offset: str | None = None, with_vectors: bool = False
    ) -> tuple[list[Hit], str | None]:
        """Points in id order, `limit` at a time; the second value is the next page's offset."""

    def highest(self, where: Where | None, key: str, limit: int) -> list[Hit]:
        """The `limit` points with the highest value of the float field `key` (indexed: one of the
        spec's float_fields), highest first; page on by narrowing `where.ranges[key]`."""
        return self._ordered(where, key, limit, descending=True)

    def lowest(self, where: Where | None, key: str, limit: int) -> list[Hit]:
        """The `limit` points with the lowest value of the float field `key` (indexed), lowest first."""
        return self._ordered(where, key, limit, descending=False)

    @abstractmethod
    def _ordered(self, where: Where | None, key: str, limit: int, descending: bool) -> list[Hit]:
        """The engine's own ordering by an indexed float field: what `highest` and `lowest` ask of it."""

    @abstractmethod
    def count(self, where: Where | None = None) -> int: ...

    def every(self, where: Where | None, page: int = 1000) -> list[Hit]:
        """Every point `where` matches, `page` at a time (for sets a caller knows to be bounded)."""
        hits: list[Hit] = []
        cursor: str | None = None
        while True:
            more, cursor = self.scroll(where, page, cursor)
            hits += more
            if cursor is None:
                return hits

    def latest(self, where: Where | None, key: str, limit: int) -> list[Hit]:
        """The `limit` points with the largest value of the float field `key`, largest first."""
        hits: list[Hit] = []
        cursor: str | None = None
        while True:
            page, cursor = self.scroll(where, 1000, cursor)
            hits = sorted(hits + page, key=lambda h: h.payload.get(key, 0), reverse=True)[:limit]
            if cursor is None:
                return hits

    def writable(self, items: Sequence[Item], only_new: bool, only_if: Where | None) -> list[Item]:
        """The items a conditional write may write, for engines without conditional writes of their own
        (the caller holds the store's write lock across this check and the write)."""
        if not only_new and only_if is None:
            return list(items)
        existing = {h.id for h in self.retrieve([it.id for it in items])}
        allowed: set[str] = set()
        if existing and only_if is not None and not only_new:
            where = only_if.model_copy(update={"has_ids": sorted(existing)})
            allowed = {h.id for h in self.scroll(where, len(existing))[0]}
        return [it for it in items if it.id not in existing or it.id in allowed]

    @abstractmethod
    def compact(self) -> None:
        """Rewrite storage so deleted points leave no bytes behind (used after erasure)."""

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def collections(self) -> list[str]:
        """The names (`CollectionSpec.name`) of the collections stored beside this one, this one included."""

    @abstractmethod
    def drop(self) -> None:
        """Delete this collection and all its data, and close the store."""


_OPERATIONS = tuple(sorted(VectorStore.__abstractmethods__ | {"latest"}))
