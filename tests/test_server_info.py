"""Every server names itself `alphaavatar-<name>` and reports the package version in `initialize`."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from tests.support import ALPHAAVATAR, server_env


@pytest.mark.parametrize("server", ["memory", "persona", "character", "research"])
async def test_initialize_reports_name_and_version(server: str, tmp_path: Path) -> None:
    params = StdioServerParameters(command=ALPHAAVATAR, args=["serve", server, "--transport", "stdio"],
                                   env=server_env(tmp_path))
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        init = await session.initialize()
    assert init.server_info.name == f"alphaavatar-{server}"
    assert init.server_info.version == version("alphaavatar") != ""
