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
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEADER_TIMEOUT_S = 10.0
# Idle keep-alive connections are closed after this long. It must outlast the idle time after which
# clients drop a pooled connection themselves (httpx 5 s, aiohttp 15 s): were the server to close
# first, a client reusing the connection at that moment would see its request fail unanswered.
KEEP_ALIVE_S = 30
MAX_HEADER_BYTES = 16 * 1024  # what uvicorn's h11 protocol allowed


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


class HeaderDeadline(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol with a deadline and a size limit for a request's headers.

    It is uvicorn's httptools protocol (a C parser) rather than h11 (pure Python): under load,
    parsing requests and framing responses was over a third of the event loop's time.

    uvicorn times out idle keep-alive connections but not one whose headers never finish (a
    'slowloris' client trickling bytes holds a file descriptor forever): the headers of each request
    on a connection, its first included, must be complete HEADER_TIMEOUT_S after the connection opened
    or the request's first byte came, or the connection is closed. A request that arrived (an upgraded
    WebSocket too) is untouched. httptools, unlike h11, sets no bound on headers: past
    MAX_HEADER_BYTES the answer is 431. A header's value reaches the app without the spaces and tabs
    around it (RFC 9110 §5.5: they are not part of the value; llhttp keeps trailing ones), so
    `Mcp-Name: memory_list ` names the tool `memory_list`.
    """

    _deadline: asyncio.TimerHandle | None = None
    _header_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(HEADER_TIMEOUT_S, self._headers_overdue)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _headers_overdue(self) -> None:
        if not self.transport.is_closing():
            self.transport.close()

    def _count(self, n: int) -> None:
        self._header_bytes += n
        if self._header_bytes > MAX_HEADER_BYTES:
            raise HeadersTooLarge  # the parser stops; uvicorn answers through send_400_response

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0
        self._arm()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value.strip(b" \t"))

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        if self._header_bytes <= MAX_HEADER_BYTES:
            super().send_400_response(msg)
            return
        body = f"The request's line and headers exceed {MAX_HEADER_BYTES // 1024} KiB.".encode()
        self.transport.write(b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; "
                             b"charset=utf-8\r\ncontent-length: " + str(len(body)).encode() +
                             b"\r\nconnection: close\r\n\r\n" + body)
        self.transport.close()


class HeadersTooLarge(Exception):
    """Raised from a parser callback to stop reading a request whose headers are too large."""
