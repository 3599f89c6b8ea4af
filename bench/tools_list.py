"""Dump every server's published MCP surface (initialize's serverInfo, tools/list) as JSON files.

Run before and after a change and `diff -r` the two folders: tool schemas must stay byte-identical
unless a change means to alter them.

    python bench/tools_list.py /tmp/tools_before
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.types import Implementation, Tool

SERVERS = ("memory", "persona", "character", "research")
ALPHAAVATAR = str(Path(sys.executable).with_name("alphaavatar"))
ROOT = Path(__file__).resolve().parents[1]  # dump this checkout's servers, whatever is installed


async def surface(server: str, home: Path) -> tuple[Implementation, list[Tool]]:
    """One server's serverInfo and tools/list, from a fresh process over stdio (data under `home`)."""
    env = {"ALPHAAVATAR_HOME": str(home), "HF_HUB_OFFLINE": "1",
           "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    params = StdioServerParameters(command=ALPHAAVATAR, args=["serve", server, "--transport", "stdio"], env=env)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        init = await session.initialize()
        tools = await session.list_tools()
    return init.server_info, tools.tools


async def dump(server: str, home: Path, out: Path) -> None:
    server_info, tools = await surface(server, home)
    info = server_info.model_dump(mode="json", exclude_none=True)
    (out / f"{server}.server_info.json").write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
    listed = [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools]
    (out / f"{server}.tools.json").write_text(json.dumps(listed, indent=1, sort_keys=True) + "\n")
    print(f"{server:10} {len(listed):3} tools  serverInfo {info}")


async def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as home:
        for server in SERVERS:
            await dump(server, Path(home), out)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1] if len(sys.argv) > 1 else "tools_list")))
