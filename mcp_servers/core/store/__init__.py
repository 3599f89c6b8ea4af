"""Open a collection on the configured backend: Qdrant Edge (default) or a Qdrant server."""

from __future__ import annotations

from ..settings import Settings
from .base import CollectionSpec, DenseQuery, Hit, Item, Query, SparseQuery, VectorStore, Where

__all__ = ["CollectionSpec", "DenseQuery", "Hit", "Item", "Query", "SparseQuery", "VectorStore", "Where", "open_store"]


def open_store(settings: Settings, server: str, spec: CollectionSpec) -> VectorStore:
    """`QDRANT_URL` set: a collection `alphaavatar_<server>_<name>` on that server; else an Edge shard
    under `ALPHAAVATAR_HOME/<server>/<name>`."""
    if settings.qdrant_url:
        from qdrant_client import QdrantClient

        from .server import ServerStore

        key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        client = QdrantClient(url=settings.qdrant_url, api_key=key)
        return ServerStore(client, f"alphaavatar_{server}_{spec.name}", spec)
    from .edge import EdgeStore

    return EdgeStore(settings.data_dir(server) / spec.name, spec)
