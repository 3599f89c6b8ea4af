"""Fixtures shared by every test module: what is costly to start is started once per session."""

from __future__ import annotations

import pytest
from mcp.types import Tool

from tests.support import server_env, stdio_session

SERVERS = ("memory", "persona", "character", "research")


@pytest.fixture(scope="session")
async def tools_lists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Tool]]:
    """The live tools/list of each of the four servers (over stdio, fresh data), in server order."""
    home = tmp_path_factory.mktemp("tools_lists")
    out: dict[str, list[Tool]] = {}
    for server in SERVERS:
        async with stdio_session(server, server_env(home / server)) as session:
            out[server] = (await session.list_tools()).tools
    return out
