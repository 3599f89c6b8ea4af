"""OAuth 2.0 Protected Resource Metadata (RFC 9728) for our HTTP endpoints, and the 401's pointer to it.

A host that meets a 401 reads `WWW-Authenticate: Bearer resource_metadata="…"`, fetches that
document and learns how to get a token. Ours are static bearer tokens (ALPHAAVATAR_TOKEN, or a
user's token from the console): no authorization server issues them yet, so the document names
none (`authorization_servers` is optional, RFC 9728 §2) and says where a token comes from instead.
The document of `/memory/mcp` is at `/.well-known/oauth-protected-resource/memory/mcp` (the path is
inserted after the well-known prefix, §3.1); the bare prefix describes the whole origin.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route
from starlette.types import Scope

WELL_KNOWN = "/.well-known/oauth-protected-resource"


def _origin(scope: Scope) -> str:
    host = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"host"), None)
    if host is None:
        server = scope.get("server") or ("127.0.0.1", 80)
        host = f"{server[0]}:{server[1]}"
    return f"{scope.get('scheme', 'http')}://{host}"


def metadata_url(scope: Scope) -> str:
    """Where the metadata of the resource this request asked for is (a 401's `resource_metadata`)."""
    path = scope.get("path", "").rstrip("/")
    return f"{_origin(scope)}{WELL_KNOWN}{path}"


def routes(servers: Sequence[str]) -> list[BaseRoute]:
    """The metadata routes, served without a token (they describe how to get one)."""

    async def metadata(request: Request) -> JSONResponse:
        path = request.path_params.get("path", "").strip("/")
        return JSONResponse({
            "resource": f"{_origin(request.scope)}/{path}",
            "resource_name": f"AlphaAvatar MCP ({', '.join(servers)})",
            "bearer_methods_supported": ["header"],
            # no "authorization_servers": none issues these tokens yet
            "alphaavatar_token_source": "A static bearer token: the owner's ALPHAAVATAR_TOKEN, or a user token "
                                        "the owner made in the console. No authorization server issues tokens yet.",
        }, headers={"Cache-Control": "max-age=3600"})

    return [Route(WELL_KNOWN, metadata), Route(WELL_KNOWN + "/{path:path}", metadata)]
