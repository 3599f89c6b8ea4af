"""mem0's own `Memory` on the AlphaAvatar store: Qdrant Edge embedded, or a Qdrant server alike.

mem0 2.2 reaches Qdrant only through qdrant-client (whose local mode is far slower with
filters than Qdrant Edge) and computes BM25 with fastembed (a model download). This adapter
speaks our `VectorStore` contract instead: mem0's vectors, payloads and entity links live in
our collections, and its keyword search uses the store's in-process BM25 sparse vectors.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

from mem0 import Memory
from mem0.configs.base import MemoryConfig
from mem0.configs.embeddings.base import BaseEmbedderConfig
from mem0.embeddings.base import EmbeddingBase
from mem0.embeddings.configs import EmbedderConfig
from mem0.llms.base import LLMBase
from mem0.llms.configs import LlmConfig
from mem0.utils.factory import EmbedderFactory, LlmFactory, VectorStoreFactory
from mem0.vector_stores.base import VectorStoreBase
from mem0.vector_stores.configs import VectorStoreConfig
from pydantic import BaseModel, ConfigDict

from mcp_servers.core.embeddings import get_embedder
from mcp_servers.core.settings import Settings
from mcp_servers.core.store import (
    CollectionSpec,
    DenseQuery,
    Hit,
    Item,
    SparseQuery,
    VectorStore,
    Where,
    open_store,
)

PROVIDER = "alphaavatar"
SERVER = "mem0"  # data under ALPHAAVATAR_HOME/mem0, or collections alphaavatar_mem0_* on a Qdrant server
_NO_LLM = "alphaavatar-no-llm"
_SUPPORTED = (
    "equality on strings and numbers, ne, in (strings), nin with one value, gte/lte on numbers, '*', "
    "AND of these, OR of equalities on one field, NOT of equalities"
)

_LOGICAL = {"AND": "AND", "$and": "AND", "OR": "OR", "$or": "OR", "NOT": "NOT", "$not": "NOT"}

Opener = Callable[[CollectionSpec], VectorStore]
Hits = list[Hit]
HitLists = list[Hits]  # spelled here: inside the adapter, `list` names its method


# --- mem0 filters -> Where ---------------------------------------------------------------------


def to_where(filters: Mapping[str, Any] | None) -> Where | None:
    """mem0's filter dict as our conjunctive `Where`.

    What a conjunction of equalities, one-field alternatives and numeric ranges cannot say is
    refused with a ValueError: a dropped condition would widen a search across users.
    """
    if not filters:
        return None
    where = Where()
    _add(where, filters)
    return where if where.equals or where.any_of or where.not_equals or where.ranges else None


def _add(where: Where, filters: Mapping[str, Any]) -> None:
    for key, value in filters.items():
        op = _LOGICAL.get(key)  # Memory.search passes OR/NOT on as $or/$not
        if op is not None:
            if not isinstance(value, list) or not value or not all(isinstance(v, dict) for v in value):
                raise ValueError(f"filter {key} needs a non-empty list of filter dicts")
            if op == "AND":
                for sub in value:
                    _add(where, sub)
            elif op == "OR":
                pairs = [_single_equality(key, sub) for sub in value]
                if len({f for f, _ in pairs}) != 1:
                    raise ValueError(f"filter {key}: the AlphaAvatar store supports {_SUPPORTED}")
                _any_of(where, pairs[0][0], [v for _, v in pairs])
            else:
                for sub in value:
                    _not_equals(where, *_single_equality(key, sub))
        else:
            _condition(where, key, value)


def _condition(where: Where, key: str, value: Any) -> None:
    if isinstance(value, str) and value == "*":
        return  # any value: mem0's own Qdrant store reads '*' the same way
    if isinstance(value, list):
        _any_of(where, key, value)
    elif isinstance(value, dict):
        for op, arg in value.items():
            if op == "eq":
                _equals(where, key, arg)
            elif op == "ne":
                _not_equals(where, key, arg)
            elif op == "in":
                _any_of(where, key, arg)
            elif op == "nin" and isinstance(arg, list) and len(arg) == 1:
                _not_equals(where, key, arg[0])
            elif op in ("gte", "lte"):
                _bound(where, key, op, arg)
            else:
                raise ValueError(f"filter {key!r} {op!r}: the AlphaAvatar store supports {_SUPPORTED}")
    else:
        _equals(where, key, value)


def _single_equality(logical: str, sub: Mapping[str, Any]) -> tuple[str, Any]:
    if len(sub) == 1:
        ((key, value),) = sub.items()
        if isinstance(value, dict) and set(value) == {"eq"}:
            value = value["eq"]
        if not isinstance(value, dict | list):
            return key, value
    raise ValueError(f"filter {logical}: the AlphaAvatar store supports {_SUPPORTED}")


def _scalar(key: str, value: Any) -> str | int | float:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(
            f"filter {key!r}: {value!r} cannot be matched on every backend (strings and numbers can; "
            "store booleans as keywords)"
        )
    return value


def _equals(where: Where, key: str, value: Any) -> None:
    v = _scalar(key, value)
    if isinstance(v, float):  # Qdrant matches floats by range only
        _bound(where, key, "gte", v)
        _bound(where, key, "lte", v)
    elif where.equals.setdefault(key, v) != v:
        raise ValueError(f"filter {key!r} cannot equal both {where.equals[key]!r} and {v!r}")


def _not_equals(where: Where, key: str, value: Any) -> None:
    v = _scalar(key, value)
    if isinstance(v, float) or where.not_equals.setdefault(key, v) != v:
        raise ValueError(f"filter {key!r} ne {v!r}: the AlphaAvatar store supports {_SUPPORTED}")


def _any_of(where: Where, key: str, values: Any) -> None:
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise ValueError(f"filter {key!r}: 'in' needs a non-empty list of strings on the AlphaAvatar store")
    if where.any_of.setdefault(key, values) != values:
        raise ValueError(f"filter {key!r}: two different 'in' lists; the AlphaAvatar store supports {_SUPPORTED}")


def _bound(where: Where, key: str, op: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"filter {key!r} {op}: range bounds must be numbers on the AlphaAvatar store, not {value!r}")
    lo, hi = where.ranges.get(key, (None, None))
    if op == "gte":
        lo = value if lo is None else max(lo, value)
    else:
        hi = value if hi is None else min(hi, value)
    where.ranges[key] = (lo, hi)


# --- the vector store ----------------------------------------------------------------------------


def _spec(name: str, dim: int) -> CollectionSpec:
    # mem0 scopes memories and entities by these ids; its own Qdrant store indexes the same four.
    return CollectionSpec(
        name, dim=dim, sparse=True, tenant_fields=("user_id",), keyword_fields=("agent_id", "run_id", "actor_id")
    )


def _bm25_text(payload: Mapping[str, Any]) -> str | None:
    # What mem0's Qdrant store indexes: the lemmatized text when spaCy made one, else the memory.
    text = payload.get("text_lemmatized") or payload.get("data")
    return text if isinstance(text, str) else None


class AlphaAvatarVectorStore(VectorStoreBase):
    """mem0's vector-store interface on one collection of our store.

    Results are our `Hit`s (`.id`, `.score`, `.payload`), the shape mem0 reads from qdrant-client's
    points; scores are cosine similarities (dense) or raw BM25 (keyword), higher is better.
    """

    def __init__(self, collection_name: str, embedding_model_dims: int, opener: Opener):
        self._open = opener
        self._store: VectorStore | None = None
        self.create_col(collection_name, embedding_model_dims)

    @property
    def store(self) -> VectorStore:
        if self._store is None:
            raise RuntimeError(f"collection {self.collection_name!r} is closed or deleted; call create_col first")
        return self._store

    def create_col(self, name: str, vector_size: int, distance: str = "cosine") -> None:
        """Open collection `name` (created on first use); it becomes this adapter's collection."""
        if str(distance).lower() != "cosine":
            raise ValueError(f"the AlphaAvatar store measures cosine similarity only, not {distance!r}")
        self.close()
        self._store = self._open(_spec(name, vector_size))
        self.collection_name, self.embedding_model_dims = name, vector_size

    def insert(
        self,
        vectors: Sequence[Sequence[float]],
        payloads: Sequence[dict[str, Any]] | None = None,
        ids: Sequence[str] | None = None,
    ) -> None:
        payloads = payloads or [{} for _ in vectors]
        ids = ids or [str(uuid.uuid4()) for _ in vectors]
        self.store.upsert([
            Item(str(i), dict(p), v, _bm25_text(p)) for i, v, p in zip(ids, vectors, payloads, strict=True)
        ])

    def search(
        self, query: str, vectors: Sequence[float], top_k: int = 5, filters: dict[str, Any] | None = None
    ) -> Hits:
        return self.store.search([DenseQuery(vectors)], to_where(filters), top_k)[0]

    def search_batch(
        self,
        queries: Sequence[str],
        vectors_list: Sequence[Sequence[float]],
        top_k: int = 1,
        filters: dict[str, Any] | None = None,
    ) -> HitLists:
        """All queries in one store round trip (the base class runs them one by one)."""
        return self.store.search([DenseQuery(v) for v in vectors_list], to_where(filters), top_k)

    def keyword_search(self, query: str, top_k: int = 5, filters: dict[str, Any] | None = None) -> Hits:
        """BM25 on the store's sparse vectors, computed in-process (nothing to download)."""
        if not query.strip():
            return []
        return self.store.search([SparseQuery(query)], to_where(filters), top_k)[0]

    def delete(self, vector_id: str) -> None:
        self.store.delete([str(vector_id)])

    def update(
        self, vector_id: str, vector: Sequence[float] | None = None, payload: dict[str, Any] | None = None
    ) -> None:
        """Rewrite the point, so its BM25 vector always follows its text.

        A payload alone is merged into the stored one, as Qdrant's set_payload does; with a vector
        it replaces it, as an upsert does.
        """
        found = self.store.retrieve([str(vector_id)], with_vectors=vector is None)
        if not found:
            raise ValueError(f"no point {vector_id} in collection {self.collection_name!r}")
        old = found[0]
        new = dict(payload) if vector is not None and payload is not None else {**old.payload, **(payload or {})}
        self.store.upsert([Item(old.id, new, vector if vector is not None else old.dense, _bm25_text(new))])

    def get(self, vector_id: str) -> Hit | None:
        found = self.store.retrieve([str(vector_id)])
        return found[0] if found else None

    def list_cols(self) -> Sequence[str]:
        """The collections beside this one: folders under ALPHAAVATAR_HOME/mem0, or alphaavatar_mem0_* on a server."""
        return self.store.collections()

    def delete_col(self) -> None:
        """Drop this collection and its data; the adapter is unusable until `create_col`."""
        store = self.store
        self._store = None
        store.drop()

    def col_info(self) -> dict[str, Any]:
        return {"name": self.collection_name, "points_count": self.store.count(), "dim": self.embedding_model_dims}

    def list(self, filters: dict[str, Any] | None = None, top_k: int | None = None) -> HitLists:
        """One page of points, nested as qdrant-client's `(points, offset)` so that mem0's `[0]` finds them."""
        hits, _ = self.store.scroll(to_where(filters), top_k or 100)
        return [hits]

    def reset(self) -> None:
        """Erase every point; on Edge the shard is rewritten so that no byte of them stays on disk."""
        store = self.store
        while hits := store.scroll(None, 1000)[0]:
            store.delete([h.id for h in hits])
        store.compact()

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


class NoLLM(LLMBase):
    """Stands in when no LLM is configured, so `add(..., infer=True)` fails at once with what to set."""

    def generate_response(self, messages: Any, tools: Any = None, tool_choice: str = "auto", **kwargs: Any) -> str:
        raise RuntimeError(
            "no LLM is configured: set ALPHAAVATAR_LLM_MODEL with OPENAI_BASE_URL or OPENAI_API_KEY, "
            "pass an 'llm' section to mem0_memory, or add with infer=False"
        )


class AlphaAvatarEmbedding(EmbeddingBase):
    """mem0 on our embedder: the vectors its sentence-transformers one gave, without torch, one model per process."""

    def __init__(self, config: BaseEmbedderConfig):
        super().__init__(config)
        self.embedder = get_embedder(config.model_kwargs["settings"])

    def embed(self, text: str, memory_action: str | None = None) -> list[float]:
        row: list[float] = self.embedder.embed([text])[0].tolist()
        return row

    def embed_batch(self, texts: list[str], memory_action: str = "add") -> list[list[float]]:
        rows: list[list[float]] = self.embedder.embed(texts).tolist()
        return rows


# mem0 offers no registration call for vector stores or embedders; its factories look providers up in these tables.
VectorStoreFactory.provider_to_class[PROVIDER] = f"{__name__}.AlphaAvatarVectorStore"
EmbedderFactory.provider_to_class[PROVIDER] = f"{__name__}.AlphaAvatarEmbedding"
LlmFactory.register_provider(_NO_LLM, f"{__name__}.NoLLM")


class AlphaAvatarStoreConfig(BaseModel):
    """What mem0 passes `AlphaAvatarVectorStore`; it copies this to open `<collection>_entities` too."""

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    collection_name: str = "mem0"
    embedding_model_dims: int = 384
    opener: Opener


class AlphaAvatarMemory(Memory):
    """A mem0 `Memory` whose `close()` also releases its collections (an Edge store is locked to its process)."""

    def close(self) -> None:
        super().close()
        for store in (self.vector_store, self._entity_store):
            if isinstance(store, AlphaAvatarVectorStore):
                store.close()

    def reset(self) -> None:
        entities = self._entity_store
        super().reset()
        if isinstance(entities, AlphaAvatarVectorStore):
            entities.close()  # mem0 erases it, then forgets it unclosed: Edge would keep it locked


def mem0_memory(
    settings: Settings, config: dict[str, Any] | None = None, opener: Opener | None = None
) -> AlphaAvatarMemory:
    """A mem0 `Memory` on our store: Qdrant Edge under ALPHAAVATAR_HOME/mem0, or the server at QDRANT_URL.

    `config` is a mem0 config dict whose sections replace these defaults: our embedder
    (`AlphaAvatarEmbedding`: MiniLM on ONNX Runtime, or what ALPHAAVATAR_EMBEDDER chooses), the
    ALPHAAVATAR_LLM_* model if one is set (else none: add with `infer=False`), history in
    ALPHAAVATAR_HOME/mem0/history.db. Its `vector_store.config` may set `collection_name` and
    `embedding_model_dims`. `opener` opens collections elsewhere (tests use qdrant-client's local mode).
    """
    cfg = dict(config or {})
    section = dict(cfg.pop("vector_store", None) or {})
    if section.pop("provider", PROVIDER) != PROVIDER:
        raise ValueError("mem0_memory runs mem0 on the AlphaAvatar store; use mem0.Memory.from_config for others")
    store_config = AlphaAvatarStoreConfig(
        **(section.pop("config", None) or {}), opener=opener or partial(open_store, settings, SERVER)
    )
    if section:
        raise ValueError(f"unknown vector_store keys: {sorted(section)}")
    own: dict[str, Any] = {"vector_store": VectorStoreConfig.model_construct(provider=PROVIDER, config=store_config)}
    if "llm" not in cfg and settings.llm_enabled:
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else "unused"
        cfg["llm"] = {
            "provider": "openai",
            "config": {"model": settings.llm_model, "api_key": key, "openai_base_url": settings.llm_base_url},
        }
    elif "llm" not in cfg:
        own["llm"] = LlmConfig.model_construct(provider=_NO_LLM, config={})
    if "embedder" not in cfg:
        own["embedder"] = EmbedderConfig.model_construct(
            provider=PROVIDER, config={"model_kwargs": {"settings": settings}, "embedding_dims": settings.embedding_dim})
    cfg.setdefault("history_db_path", str(settings.data_dir(SERVER) / "history.db"))
    # mem0's config validators know only its built-in providers, so ours go in after validation.
    return AlphaAvatarMemory(MemoryConfig(**cfg).model_copy(update=own))
