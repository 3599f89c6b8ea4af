"""Bearer-token auth for HTTP transports, and per-user scoping of tools.

The HTTP middleware rejects a request without a valid token before it reaches MCP; tools then
read the (already verified) token of their own request to learn whom they serve. Over stdio the
caller is the local user who started the process, with full access.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import Forbidden
from .settings import Settings


@dataclass(frozen=True)
class Principal:
    """Who is calling: `user_id` None means every user (the owner's token, or stdio)."""

    user_id: str | None = None


FULL_ACCESS = Principal()


def _bearer(headers: Any) -> str | None:
    value = headers.get("authorization") if headers is not None else None
    if not value or not value.lower().startswith("bearer "):
        return None
    return str(value[7:].strip())


def principal_for(token: str | None, settings: Settings) -> Principal | None:
    """The principal a token grants, or None if it grants nothing."""
    if token is None:
        return None
    if settings.token is not None and hmac.compare_digest(token, settings.token.get_secret_value()):
        return FULL_ACCESS
    for candidate, user in settings.user_tokens.items():
        if hmac.compare_digest(token, candidate):
            return Principal(user_id=user)
    return None


def auth_required(settings: Settings) -> bool:
    return settings.token is not None or bool(settings.user_tokens)


def caller(ctx: Any, settings: Settings) -> Principal:
    """The principal of the request a tool is serving (`ctx` is the tool's MCP Context)."""
    headers = ctx.headers if ctx is not None else None
    if headers is None or not auth_required(settings):
        return FULL_ACCESS
    return principal_for(_bearer(headers), settings) or FULL_ACCESS


def scope_user(principal: Principal, user_id: str | None) -> str | None:
    """The user id a call may act on: a scoped token is pinned to its own user."""
    if principal.user_id is None:
        return user_id
    if user_id is not None and user_id != principal.user_id:
        raise Forbidden(
            f"This token is scoped to user '{principal.user_id}' and cannot read or write user '{user_id}'."
        )
    return principal.user_id


class BearerAuthMiddleware:
    """ASGI middleware: every HTTP request except `/healthz` needs a known bearer token."""

    def __init__(self, app: ASGIApp, settings: Settings):
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope.get("path", "").rstrip("/").endswith("/healthz"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
        token = _bearer(headers)
        if token is None and scope["type"] == "websocket":
            # Browsers cannot set headers on a WebSocket: accept ?token= there.
            from urllib.parse import parse_qs

            token = (parse_qs(scope.get("query_string", b"").decode()).get("token") or [None])[0]
        if principal_for(token, self.settings) is None:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 4401})
                return
            response = JSONResponse(
                {"error": "unauthorized", "detail": "Send 'Authorization: Bearer <ALPHAAVATAR_TOKEN>'."},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
