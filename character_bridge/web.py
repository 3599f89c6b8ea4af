"""HTTP side of the bridge: the built-in viewer page and the hub's WebSocket, as starlette routes.

Mounted under `/character/` by `alphaavatar up`, so the page is `/character/` and the hub
`/character/ws` (the page connects to `ws` relative to itself). Every asset is served from
this package; a Content-Security-Policy forbids loading anything from elsewhere.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute

from .hub import Hub

VIEWER_DIR = Path(__file__).parent / "viewer"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'self'")
ASSETS = {"index.html": "text/html; charset=utf-8", "viewer.js": "text/javascript; charset=utf-8",
          "viewer.css": "text/css; charset=utf-8"}
# The page's own files: code, no data, so they load without a token (the hub's stream needs one).
PUBLIC = {name: "/" if name == "index.html" else f"/{name}" for name in ASSETS}


def _asset(name: str) -> Route:
    async def serve(_: Request) -> Response:
        return FileResponse(VIEWER_DIR / name, media_type=ASSETS[name],
                            headers={"Cache-Control": "no-cache", "Content-Security-Policy": CSP,
                                     "X-Content-Type-Options": "nosniff"})

    return Route(PUBLIC[name], serve, methods=["GET", "HEAD"])


def routes(hub: Hub) -> list[BaseRoute]:
    """The viewer at `/` (plus its two assets) and the hub at `/ws`."""
    return [*(_asset(name) for name in ASSETS), WebSocketRoute("/ws", hub.endpoint)]
