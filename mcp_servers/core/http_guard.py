"""HTTP hygiene for every route: DNS-rebinding protection, and a deadline for slow request headers.

The MCP SDK checks Host and Origin on its own transports; the character hub, the viewer, the
console and `/healthz` are ours, so one ASGI middleware applies the same lists to all of them.
A page on another site that resolves its name to 127.0.0.1 then gets 421 (wrong Host) or 403
(foreign Origin), and a foreign WebSocket is closed before it is accepted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_TIMEOUT_S = 10.0


def matches(value: str, patterns: Sequence[str]) -> bool:
    """`value` is one of `patterns`, where 'name:*' stands for the name with any port."""
    return any(value == p or (p.endswith(":*") and value.startswith(p[:-1])) for p in patterns)


class RebindingGuard:
    def __init__(self, app: ASGIApp, hosts: Sequence[str], origins: Sequence[str]):
        self.app = app
        self.hosts = hosts
        self.origins = origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
            origin = headers.get("origin")
            refusal = None
            if not matches(headers.get("host", ""), self.hosts):
                refusal = (421, "This server answers only to its own host name (DNS-rebinding protection).")
            elif origin and not matches(origin, self.origins):
                refusal = (403, "Requests from other web sites are refused (DNS-rebinding protection).")
            if refusal is not None:
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 4403})
                else:
                    await PlainTextResponse(refusal[1], status_code=refusal[0])(scope, receive, send)
                return
        await self.app(scope, receive, send)


class HeaderDeadline(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with a deadline for a connection's first request headers.

    uvicorn times out idle keep-alive connections but not one that never finishes its headers (a
    'slowloris' client trickling bytes holds a file descriptor forever); such a connection is closed
    HEADER_TIMEOUT_S after it opened. A request that arrived (an upgraded WebSocket too) is untouched.
    """

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.loop.call_later(HEADER_TIMEOUT_S, self._headers_overdue)

    def _headers_overdue(self) -> None:
        if self.scope is None and not self.transport.is_closing():
            self.transport.close()
