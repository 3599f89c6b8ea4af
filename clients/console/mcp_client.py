"""The console's only way to the data: an MCP client session over streamable HTTP to this
process's own servers, carrying the signed-in token, so each server's own checks decide. Its
requests carry the relay header only this process can make (`audit.relay_headers`), so the
activity trail knows them as the console's without trusting the client name."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import Implementation

from clients import __version__
from mcp_servers.core import audit

CLIENT = Implementation(name="alphaavatar-console", version=__version__)
RELAY = "console"  # the trail's `via` for the console's calls
SERVERS = ("memory", "persona", "character", "research")


@contextlib.asynccontextmanager
async def session(base_url: str, server: str, token: str | None) -> AsyncIterator[ClientSession]:
    """A session with `server` at `base_url/<server>/mcp` as the holder of `token`."""
    if server not in SERVERS:
        raise ValueError(f"unknown server {server!r}")
    headers = audit.relay_headers(RELAY) | ({"Authorization": f"Bearer {token}"} if token else {})
    async with httpx2.AsyncClient(headers=headers, timeout=120) as http, streamable_http_client(
        f"{base_url}/{server}/mcp", http_client=http
    ) as streams, ClientSession(streams[0], streams[1], client_info=CLIENT) as s:
        await s.initialize()
        yield s


async def call(s: ClientSession, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """{ok, data, text}: a tool error is an answer (its text says why), not an exception."""
    try:
        res = await s.call_tool(tool, arguments)
    except MCPError as exc:  # an unknown tool is a protocol error
        return {"ok": False, "data": None, "text": exc.error.message}
    text = "\n".join(getattr(c, "text", "") for c in res.content)
    return {"ok": not res.is_error, "data": None if res.is_error else res.structured_content, "text": text}
