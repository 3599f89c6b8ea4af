"""A third-party MCP server whose tool list changes at run time (for the agent's hub tests).

`unlock(name)` adds a tool `name` that answers "unlocked <name>" and tells every client with
`notifications/tools/list_changed`, as any dynamic MCP server a user lists may do.
Run as `python tests/fakes/changing_mcp_server.py` (stdio).
"""

from __future__ import annotations

from mcp.server.mcpserver import Context, MCPServer

mcp = MCPServer("changing")


@mcp.tool()
async def unlock(name: str, ctx: Context) -> str:
    """Add a new tool called `name`."""

    def added() -> str:
        return f"unlocked {name}"

    mcp.add_tool(added, name=name, description=f"A tool unlocked at run time ({name}).")
    await ctx.session.send_tool_list_changed()
    return f"added {name}"


if __name__ == "__main__":
    mcp.run("stdio")
