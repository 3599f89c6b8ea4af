"""DNS-rebinding protection for every HTTP and WebSocket route, not only the MCP endpoints.

The MCP SDK checks Host and Origin on its own transports; the character hub, the viewer, the
console and `/healthz` are ours, so one ASGI middleware applies the same lists to all of them.
A page on another site that resolves its name to 127.0.0.1 then gets 421 (wrong Host) or 403
(foreign Origin), and a foreign WebSocket is closed before it is accepted.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send


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
