"""Bearer-token auth for HTTP transports, and per-user scoping of tools, resources and prompts.

The HTTP middleware verifies the token once and stores the principal it grants in the request's
ASGI scope; handlers read it back with `caller`. Every decision fails closed: a request that did
not pass the middleware, or carries no principal, gets no data. Over stdio the caller is the local
user who started the process (the runner marks the stdio task with `local_owner`), with full access.

Delegation: the owner may run one request as a user by naming that user under `ACT_AS` in the
request's `_meta` (the voice agent does, for every call its LLM asks for, so the model acts with the
speaker's rights). `caller` then answers that user's principal, exactly what the user's own token
would get; from any other principal the key must name the caller's own user, or nothing runs.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
from collections.abc import Collection, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from mcp.types import CallToolResult, TextContent
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import Forbidden
from .protected_resource import WELL_KNOWN, metadata_url
from .settings import Settings


@dataclass(frozen=True)
class Principal:
    """Who is calling: `user_id` None means every user (the owner's token, or stdio); `delegated`
    marks the owner acting as that user for one request (same rights as the user's own token)."""

    user_id: str | None = None
    delegated: bool = False

    def label(self) -> str:
        """How logs and the audit trail name the caller (never a token)."""
        if self.user_id is None:
            return "owner"
        return f"owner as user:{self.user_id}" if self.delegated else f"user:{self.user_id}"


FULL_ACCESS = Principal()
ACT_AS = "alphaavatar/act_as"  # request `_meta` key: the user the owner's request runs as
OWNER_ONLY = "alphaavatar/owner_only"  # tool `_meta` key: no user principal may call it
MAX_USER_ID = 200
SCOPE_KEY = "alphaavatar.principal"  # where the middleware leaves the verified principal
BEARER_SUBPROTOCOL = "alphaavatar.bearer"  # a browser's WebSocket offers [this, base64url(token)]
_local_owner: ContextVar[bool] = ContextVar("alphaavatar_local_owner", default=False)


@contextlib.contextmanager
def local_owner() -> Iterator[None]:
    """Requests handled inside this block (the stdio transport) come from the local owner."""
    mark = _local_owner.set(True)
    try:
        yield
    finally:
        _local_owner.reset(mark)


def _bearer(headers: Any) -> str | None:
    value = headers.get("authorization") if headers is not None else None
    if not value or not value.lower().startswith("bearer "):
        return None
    return str(value[7:].strip())


def _subprotocol_bearer(headers: dict[str, str]) -> str | None:
    """The token a browser's WebSocket carries as the subprotocol after `BEARER_SUBPROTOCOL`.

    Browsers cannot set headers on a WebSocket, and a token in the URL ends up in histories and
    access logs. So the page offers two subprotocols, `alphaavatar.bearer` and the token in
    base64url (as Kubernetes' `base64url.bearer.authorization.k8s.io.` does), and the endpoint
    answers with the first, non-secret one. Chosen over a single-use ticket from a POST: no state to
    keep or expire, no second request, and the token stays in headers end to end."""
    offered = [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",")]
    if BEARER_SUBPROTOCOL not in offered[:-1]:
        return None
    encoded = offered[offered.index(BEARER_SUBPROTOCOL) + 1]
    try:
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, ValueError):
        return None


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


def caller(ctx: Any) -> Principal:
    """The principal of the request a handler is serving (`ctx`: its MCP Context, or the request
    context a middleware sees), delegation included. Fails closed."""
    context = getattr(ctx, "request_context", ctx) if ctx is not None else None
    return acting(connection_principal(context), getattr(context, "meta", None))


def connection_principal(context: Any) -> Principal:
    """Who the transport says is calling: the verified token's principal, or stdio's owner."""
    request = getattr(context, "request", None)
    if request is None:
        if _local_owner.get():
            return FULL_ACCESS
        raise Forbidden("This request carries no credentials, so it may see no data.")
    principal = getattr(request, "scope", {}).get(SCOPE_KEY)
    if not isinstance(principal, Principal):
        raise Forbidden("This request was not authenticated, so it may see no data.")
    return principal


def acting(principal: Principal, meta: Any) -> Principal:
    """The principal a request runs as, given its `_meta`: the owner may act as one user."""
    if not isinstance(meta, dict) or ACT_AS not in meta:
        return principal
    user_id = meta[ACT_AS]
    if not isinstance(user_id, str) or not user_id.strip() or len(user_id) > MAX_USER_ID:
        raise Forbidden(f"'{ACT_AS}' in _meta must be the id of the user this request acts for "
                        f"(1-{MAX_USER_ID} characters); nothing was done.")
    if principal.user_id is None:
        return Principal(user_id=user_id, delegated=True)
    if user_id != principal.user_id:
        raise Forbidden(f"This token is scoped to user '{principal.user_id}' and cannot act for user '{user_id}'.")
    return principal


def request_principal(scope: Scope) -> Principal | None:
    """The principal the middleware verified for an HTTP or WebSocket request (routes of our own)."""
    found = scope.get(SCOPE_KEY)
    return found if isinstance(found, Principal) else None


def scope_user(principal: Principal, user_id: str | None) -> str | None:
    """The user id a call may act on: a scoped token is pinned to its own user."""
    if principal.user_id is None:
        return user_id
    if user_id is not None and user_id != principal.user_id:
        raise Forbidden(
            f"This token is scoped to user '{principal.user_id}' and cannot read or write user '{user_id}'."
        )
    return principal.user_id


DATA_METHODS = frozenset({"tools/call", "resources/read", "prompts/get"})


class AccessMiddleware:
    """MCP server middleware: no tool, resource or prompt runs for a request without a principal,
    whatever its handler does; an `owner_only` server (the message says why) serves the owner only."""

    def __init__(self, owner_only: str | None = None):
        self.owner_only = owner_only

    async def __call__(self, ctx: Any, call_next: Any) -> Any:
        if ctx.method in DATA_METHODS:
            try:
                principal = caller(ctx)
                if self.owner_only and principal.user_id is not None:
                    raise Forbidden(self.owner_only)
            except Forbidden as refused:
                if ctx.method != "tools/call":
                    raise
                return CallToolResult(content=[TextContent(type="text", text=str(refused))], is_error=True)
        return await call_next(ctx)


class BearerAuthMiddleware:
    """ASGI middleware in front of every route: it decides who the request is, or refuses it.

    With no token configured (loopback only, see runner.check_bind) every request is the owner's;
    otherwise a known bearer token is needed, except for `/healthz`, the `public` paths (static
    pages that hold no data, such as the character viewer, which a browser loads before it can send
    a token) and the RFC 9728 metadata its 401 points to (`protected_resource`). A WebSocket may carry its token as a subprotocol instead (`_subprotocol_bearer`).
    """

    def __init__(self, app: ASGIApp, settings: Settings, public: Collection[str] = ()):
        self.app = app
        self.settings = settings
        self.public = frozenset(public)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        scope.pop(SCOPE_KEY, None)  # only this middleware may say who a request is
        principal = self._principal(scope)
        if principal is not None:
            scope[SCOPE_KEY] = principal
        elif not (scope.get("path", "").rstrip("/").endswith("/healthz")
                  or (scope["type"] == "http" and (scope.get("path") in self.public
                                                   or scope.get("path", "").startswith(WELL_KNOWN)))):
            await self._refuse(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _principal(self, scope: Scope) -> Principal | None:
        if not auth_required(self.settings):
            return FULL_ACCESS
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        token = _bearer(headers)
        if token is None and scope["type"] == "websocket":
            token = _subprotocol_bearer(headers)
        return principal_for(token, self.settings)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 4401})
            return
        response = JSONResponse(
            {"error": "unauthorized", "detail": "Send 'Authorization: Bearer <ALPHAAVATAR_TOKEN>'."},
            status_code=401,
            headers={"WWW-Authenticate": f'Bearer resource_metadata="{metadata_url(scope)}"'},
        )
        await response(scope, receive, send)
