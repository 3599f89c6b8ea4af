"""The latency floor: an MCP server with one `echo` tool, served by our own runner over stdio."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel

from mcp_servers.core.settings import get_settings
from mcp_servers.core.transports import ServerSpec, serve


class Echo(BaseModel):
    text: str


def create_server() -> ServerSpec:
    mcp = MCPServer("echo")

    @mcp.tool()
    def echo(text: str) -> Echo:
        """Return the text unchanged."""
        return Echo(text=text)

    return ServerSpec("echo", mcp)


if __name__ == "__main__":
    serve([create_server()], "stdio", "127.0.0.1", 0, get_settings())
