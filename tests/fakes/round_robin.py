"""A round-robin HTTP load balancer in front of server replicas: each request goes to the next
replica, with no affinity, as a cloud balancer does; responses (JSON or SSE) stream through.

The one exception is an MCP 2025-11-25 session: its state lives in the replica that answered its
`initialize` (the `Mcp-Session-Id` that replica handed out), so requests carrying that id go back
to it (session affinity). Requests of the stateless 2026-07-28 revision carry no session id and
go round-robin. `down` takes a replica out of the rotation, as a health check would. `routed` lists
each request's replica and JSON-RPC message, so a test can tell which replica answered what.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import AsyncIterator
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.background import BackgroundServer

SESSION = "mcp-session-id"
_HOP = {"host", "content-length", "transfer-encoding", "connection", "keep-alive"}


class RoundRobin(BackgroundServer):
    """`with RoundRobin([url1, url2, url3]) as lb:` serves at `lb.url`; `lb.hits` counts per replica."""

    def __init__(self, upstreams: list[str], port: int | None = None):
        self.upstreams = list(upstreams)
        self.hits = dict.fromkeys(self.upstreams, 0)
        self.down: set[str] = set()
        self.sessions: dict[str, str] = {}  # Mcp-Session-Id -> the replica holding that session
        self.routed: list[tuple[str, dict[str, Any]]] = []
        self._turn = itertools.count()
        self._lock = threading.Lock()
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(120, connect=5))
        super().__init__(Starlette(routes=[Route("/{path:path}", self._forward,
                                                 methods=["GET", "POST", "DELETE", "PUT", "PATCH", "OPTIONS"])]), port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _pick(self, session: str | None) -> str:
        with self._lock:
            if session and session in self.sessions:
                return self.sessions[session]
            live = [u for u in self.upstreams if u not in self.down]
            if not live:
                raise RuntimeError("no replica is up")
            target = live[next(self._turn) % len(live)]
            self.hits[target] += 1
            return target

    async def _forward(self, request: Request) -> Response:
        target = self._pick(request.headers.get(SESSION))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        url = f"{target}/{request.path_params['path']}" + (f"?{request.url.query}" if request.url.query else "")
        body = await request.body()
        self.routed.append((target, _message(body)))
        upstream = self._client.build_request(request.method, url, headers=headers, content=body)
        try:
            reply = await self._client.send(upstream, stream=True)
        except httpx.TransportError as exc:
            return Response(f"replica unreachable: {exc}", status_code=502)
        if sid := reply.headers.get(SESSION):
            with self._lock:
                self.sessions.setdefault(sid, target)
        out = {k: v for k, v in reply.headers.items() if k.lower() not in _HOP}

        async def body() -> AsyncIterator[bytes]:
            try:
                async for chunk in reply.aiter_raw():
                    yield chunk
            except httpx.TransportError:  # the replica died mid-answer: the client sees a cut stream
                return

        return StreamingResponse(body(), status_code=reply.status_code, headers=out,
                                 background=BackgroundTask(reply.aclose))


def _message(body: bytes) -> dict[str, Any]:
    """The JSON-RPC message a request carries ({} for none)."""
    try:
        found = json.loads(body) if body else {}
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}
