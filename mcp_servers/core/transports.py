"""Serve MCP servers over stdio, SSE and streamable HTTP from one entry point.

`serve` runs one server, or several on one port under `/<name>/mcp` (and `/<name>/sse`) as
`alphaavatar up` does. HTTP is loopback-only unless a token is set.
"""

from __future__ import annotations

import contextlib
import importlib.util
import ipaddress
import logging
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import anyio
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Mount, Route

from . import auth, health, protected_resource
from .http_guard import KEEP_ALIVE_S, HeaderDeadline, RebindingGuard
from .server import Server
from .settings import Settings
from .sse_events import RETRY_MS, EventIds
from .store import lock

log = logging.getLogger(__name__)

Transport = Literal["stdio", "sse", "http"]
LOOPBACK_NAMES = ("localhost",)


@dataclass
class ServerSpec:
    """A server ready to run: its MCP app, extra HTTP routes, and process-level start/stop hooks.

    Stores and models belong to the process, not to an MCP session (HTTP opens many sessions),
    so they are opened by `startup` (or lazily) and closed by `shutdown`.
    """

    name: str
    mcp: Server
    routes: Sequence[BaseRoute] = ()
    public: Sequence[str] = ()  # paths of `routes` served without a token: static files holding no data
    startup: Callable[[], Awaitable[None]] | None = None
    shutdown: Callable[[], Awaitable[None]] | None = None
    health: Callable[[], dict[str, object]] = field(default=lambda: {})
    ready: Callable[[], bool] = field(default=lambda: True)


class RefusedToStart(Exception):
    """A configuration that must not start; the CLI prints it and exits with status 2."""


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _security(host: str, port: int, settings: Settings) -> TransportSecuritySettings:
    """DNS-rebinding protection: only loopback Host/Origin headers (plus configured ones)."""
    hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*", *settings.allowed_hosts]
    origins = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]
    origins += [f"http://{h}" for h in settings.allowed_hosts] + [f"https://{h}" for h in settings.allowed_hosts]
    if not is_loopback(host) and not settings.allowed_hosts:
        # Beyond loopback the bearer token is the guard; Host names are the deployer's business.
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins)


def check_bind(host: str, settings: Settings) -> None:
    if not is_loopback(host) and not auth.auth_required(settings):
        raise RefusedToStart(
            f"Refusing to serve on {host} without a token: set ALPHAAVATAR_TOKEN (or bind to 127.0.0.1)."
        )


def build_app(specs: Sequence[ServerSpec], host: str, port: int, settings: Settings, prefixed: bool,
              extra: Sequence[BaseRoute] = ()) -> Starlette:
    """One Starlette app for these servers. `prefixed` mounts each under `/<name>/`.

    `extra` are routes served beside the servers (the console at `/`): matched first, behind the
    same Host/Origin guard, but outside the token check — they do their own (a sign-in page must
    load without a token)."""
    security = _security(host, port, settings)
    routes: list[BaseRoute] = []
    managers = []
    for spec in specs:
        # A server whose calls may send mid-call messages answers with an SSE stream; others with one
        # JSON body, which costs the event loop less (no stream, no ping and disconnect tasks per call).
        http_app = spec.mcp.streamable_http_app(streamable_http_path="/mcp", transport_security=security, host=host,
                                                json_response=not spec.mcp.streams(),
                                                event_store=EventIds(), retry_interval=RETRY_MS)
        sse_app = spec.mcp.sse_app(sse_path="/sse", message_path="/messages/", transport_security=security, host=host)
        managers.append(spec.mcp.session_manager)
        sub_routes = [*spec.routes, *http_app.routes, *sse_app.routes]
        if prefixed:
            routes.append(Mount(f"/{spec.name}", routes=sub_routes))
        else:
            routes.extend(sub_routes)

    async def healthz(_: Request) -> JSONResponse:
        """200 once every server can answer at full speed (models loaded); 503 while starting, or
        'failed' (also 503) when a model failed to load, with the reason under its server."""
        servers = {s.name: s.health() for s in specs}
        states = [health.status(servers[s.name], s.ready()) for s in specs]
        worst = "failed" if "failed" in states else "starting" if "starting" in states else "ok"
        return JSONResponse({"status": worst, "servers": servers}, status_code=200 if worst == "ok" else 503)

    routes[:0] = [Route("/healthz", healthz), *protected_resource.routes([s.name for s in specs])]

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            for manager in managers:
                await stack.enter_async_context(manager.run())
            async with running(specs):
                yield

    public = [f"/{spec.name}{path}" if prefixed else path for spec in specs for path in spec.public]
    middleware = [Middleware(auth.BearerAuthMiddleware, settings=settings, public=public)]
    guard = [Middleware(RebindingGuard, hosts=security.allowed_hosts, origins=security.allowed_origins)
             ] if security.enable_dns_rebinding_protection else []
    if not extra:
        return Starlette(routes=routes, middleware=[*guard, *middleware], lifespan=lifespan)
    servers = Starlette(routes=routes, middleware=middleware)
    return Starlette(routes=[*extra, Mount("", app=servers)], middleware=guard, lifespan=lifespan)


@contextlib.asynccontextmanager
async def running(specs: Sequence[ServerSpec]) -> AsyncIterator[None]:
    """Start every server's process-level resources, and always stop them."""
    started: list[ServerSpec] = []
    try:
        for spec in specs:
            if spec.startup:
                await spec.startup()
            started.append(spec)
        yield
    finally:
        for spec in reversed(started):
            if spec.shutdown:
                with anyio.CancelScope(shield=True):
                    try:
                        await spec.shutdown()
                    except Exception:
                        log.exception("shutdown of %s failed", spec.name)


async def serve_stdio(spec: ServerSpec) -> None:
    async with running([spec]):
        with auth.local_owner():
            await spec.mcp.run_stdio_async()


async def serve_http(specs: Sequence[ServerSpec], host: str, port: int, settings: Settings, prefixed: bool,
                     extra: Sequence[BaseRoute] = ()) -> None:
    import uvicorn

    check_bind(host, settings)
    lock.advertised_url = f"http://{host}:{port}"
    app = build_app(specs, host, port, settings, prefixed, extra)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on", access_log=False,
                            http=HeaderDeadline, timeout_keep_alive=KEEP_ALIVE_S)
    server = uvicorn.Server(config)
    log.info("serving %s on http://%s:%d", ", ".join(s.name for s in specs), host, port)
    await server.serve()


def serve(specs: Sequence[ServerSpec], transport: Transport, host: str, port: int, settings: Settings,
          prefixed: bool = False, extra: Sequence[BaseRoute] = ()) -> None:
    """Run until stdin closes (stdio: one server) or the process is stopped (HTTP), then exit.

    The exit is immediate once the shutdown hooks have closed every store: a model still
    loading on a worker thread would otherwise hold the process (Python joins executor threads
    at exit) past the 2 s an MCP host waits after closing stdin before it kills the server.
    """
    # uvloop: the event loop itself costs less per call than asyncio's (it is not built for Windows)
    fast = {"use_uvloop": importlib.util.find_spec("uvloop") is not None}
    if transport == "stdio":
        (spec,) = specs
        anyio.run(serve_stdio, spec, backend_options=fast)
    else:
        anyio.run(serve_http, specs, host, port, settings, prefixed, extra, backend_options=fast)
    logging.shutdown()
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(0)
