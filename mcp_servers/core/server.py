"""Our MCPServer: the SDK's, with every failure answered in words a person can act on.

- Tool arguments that fail validation are explained (`tool_errors.explain`), not dumped.
- A tool that crashes answers what failed and the request id under which its traceback was
  logged on stderr, never the exception itself.
- A tools/call whose `arguments` is not an object is told so (`tool_errors.check_call_shape`, which
  `core.app.new_server` puts in the one middleware list every server gets).
- On stdio, a line that is not a JSON-RPC message is answered with a JSON-RPC error
  (`stdio.AnsweringReader`) instead of being dropped.

Both tool paths live in `call_tool`, the documented place where a tool's failures surface,
each with its cause.
"""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.server.stdio import stdio_server
from mcp.types import CallToolResult
from mcp_types import InputRequiredResult
from pydantic import ValidationError

from .logs import request_id
from .stdio import AnsweringReader
from .tool_errors import explain


class Server(MCPServer):
    """MCPServer whose tool errors are sentences (see the module docstring)."""

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        try:
            return await super().call_tool(name, arguments, context)
        except UnexpectedToolError as exc:
            rid = request_id.get()
            raise UnexpectedToolError(
                f"Error executing tool {name}: the server failed while running this call, and the call did not "
                f"complete. The cause was logged on the server's stderr{f' (request id {rid})' if rid else ''}; "
                "check the arguments and try again, or report it with that request id if it happens again."
            ) from exc.__cause__
        except ToolError as exc:
            if isinstance(exc.__cause__, ValidationError):
                raise ToolError(f"Error executing tool {name}: {explain(exc.__cause__, name)}") from exc.__cause__
            raise

    async def run_stdio_async(self) -> None:
        async with stdio_server() as (read_stream, write_stream):
            lowlevel = self._lowlevel_server
            await lowlevel.run(AnsweringReader(read_stream, write_stream), write_stream,
                               lowlevel.create_initialization_options())
