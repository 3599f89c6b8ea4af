"""A local server speaking the Qdrant REST API for the calls qdrant-client 1.20 makes (over REST,
its default), backed by qdrant-client's own local engine: a stand-in for a Qdrant server.

Each request is parsed into qdrant-client's REST models and run on one in-memory local client
under one lock, so every write is atomic and ordered as on a real server, and conditional writes
(`update_filter`, `update_mode`) behave as the engine defines them. `python -m
tests.fakes.qdrant_server --port N` runs it in its own process (the replica tests and bench do).
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

import uvicorn
from pydantic import BaseModel
from qdrant_client import QdrantClient
from qdrant_client.http import models as m
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.background import BackgroundServer

VERSION = "1.20.0"  # the server release qdrant-client 1.20 is built for


def _json(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_unset=False)
    if isinstance(value, list):
        return [_json(v) for v in value]
    return value


class QdrantStandIn:
    """The engine and its routes; `app` is the Starlette app."""

    def __init__(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.engine = QdrantClient(location=":memory:")
        self.lock = threading.Lock()
        self.requests = 0
        self.app = Starlette(routes=[
            Route("/", self._root, methods=["GET"]),
            Route("/collections", self._collections, methods=["GET"]),
            Route("/collections/{name}/exists", self._exists, methods=["GET"]),
            Route("/collections/{name}", self._collection, methods=["PUT", "DELETE", "GET"]),
            Route("/collections/{name}/index", self._index, methods=["PUT"]),
            Route("/collections/{name}/points", self._points, methods=["PUT", "POST"]),
            Route("/collections/{name}/points/payload", self._set_payload, methods=["POST"]),
            Route("/collections/{name}/points/delete", self._delete, methods=["POST"]),
            Route("/collections/{name}/points/scroll", self._scroll, methods=["POST"]),
            Route("/collections/{name}/points/count", self._count, methods=["POST"]),
            Route("/collections/{name}/points/query/batch", self._query_batch, methods=["POST"]),
        ])

    async def _run(self, call: Callable[[], Any]) -> JSONResponse:
        """Run one engine call off the loop under the lock; Qdrant's envelope or its error shape."""
        started = time.perf_counter()

        def locked() -> Any:
            with self.lock, warnings.catch_warnings():
                warnings.simplefilter("ignore")  # local mode says payload indexes are no-ops
                self.requests += 1
                return call()

        try:
            result = await asyncio.to_thread(locked)
        except (ValueError, KeyError, AssertionError) as exc:
            status = 404 if "not found" in str(exc).lower() else 400
            return JSONResponse({"status": {"error": str(exc)}, "time": 0}, status_code=status)
        return JSONResponse({"result": _json(result), "status": "ok", "time": time.perf_counter() - started})

    async def _root(self, request: Request) -> JSONResponse:
        return JSONResponse({"title": "qdrant stand-in (tests.fakes.qdrant_server)", "version": VERSION})

    async def _collections(self, request: Request) -> JSONResponse:
        return await self._run(self.engine.get_collections)

    async def _exists(self, request: Request) -> JSONResponse:
        name = request.path_params["name"]
        return await self._run(lambda: m.CollectionExistence(exists=self.engine.collection_exists(name)))

    async def _collection(self, request: Request) -> JSONResponse:
        name = request.path_params["name"]
        if request.method == "DELETE":
            return await self._run(lambda: self.engine.delete_collection(name))
        if request.method == "GET":
            return await self._run(lambda: self.engine.get_collection(name))
        body = m.CreateCollection.model_validate(await request.json())
        return await self._run(lambda: self.engine.create_collection(
            name, vectors_config=body.vectors or {}, sparse_vectors_config=body.sparse_vectors))

    async def _index(self, request: Request) -> JSONResponse:
        name = request.path_params["name"]
        body = m.CreateFieldIndex.model_validate(await request.json())
        return await self._run(lambda: self.engine.create_payload_index(name, body.field_name, body.field_schema))

    async def _points(self, request: Request) -> JSONResponse:
        name = request.path_params["name"]
        if request.method == "POST":  # retrieve
            ask = m.PointRequest.model_validate(await request.json())
            return await self._run(lambda: self.engine.retrieve(
                name, ask.ids, with_payload=ask.with_payload if ask.with_payload is not None else True,
                with_vectors=ask.with_vector if ask.with_vector is not None else False))
        body = m.PointsList.model_validate(await request.json())
        return await self._run(lambda: self.engine.upsert(
            name, body.points, update_filter=body.update_filter, update_mode=body.update_mode))

    async def _set_payload(self, request: Request) -> JSONResponse:
        name = request.path_params["name"]
        body = m.SetPayload.model_validate(await request.json())
        selector: Any = body.points if body.points is not None else m.FilterSelector(filter=body.filter or m.Filter())
        return await self._run(lambda: self.engine.set_payload(name, body.payload, points=selector, key=body.key))

    async def _delete(self, request: Request) -> JSONResponse:
        name = request.path_params["name"]
        raw = await request.json()
        selector: Any = m.FilterSelector.model_validate(raw) if "filter" in raw else m.PointIdsList.model_validate(raw)
        return await self._run(lambda: self.engine.delete(name, selector))

    async def _scroll(self, request: Request) -> JSONResponse:
        name = request.path_params["name"]
        body = m.ScrollRequest.model_validate(await request.json())

        def scroll() -> m.ScrollResult:
            points, nxt = self.engine.scroll(
                name, scroll_filter=body.filter, limit=body.limit or 10, offset=body.offset, order_by=body.order_by,
                with_payload=body.with_payload if body.with_payload is not None else True,
                with_vectors=body.with_vector if body.with_vector is not None else False)
            return m.ScrollResult(points=points, next_page_offset=nxt)

        return await self._run(scroll)

    async def _count(self, request: Request) -> JSONResponse:
        name = request.path_params["name"]
        body = m.CountRequest.model_validate(await request.json())
        return await self._run(lambda: self.engine.count(name, count_filter=body.filter, exact=True))

    async def _query_batch(self, request: Request) -> JSONResponse:
        name = request.path_params["name"]
        body = m.QueryRequestBatch.model_validate(await request.json())
        return await self._run(lambda: self.engine.query_batch_points(name, body.searches))


class FakeQdrant(BackgroundServer):
    """`with FakeQdrant() as q:` serves the stand-in in this process at `q.url` (QDRANT_URL)."""

    def __init__(self, port: int | None = None):
        self.stand_in = QdrantStandIn()
        super().__init__(self.stand_in.app, port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(QdrantStandIn().app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
