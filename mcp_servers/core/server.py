"""Our MCPServer: the SDK's, with every failure answered in words a person can act on.

- Tool arguments that fail validation are explained (`tool_errors.explain`), not dumped.
- A tool that crashes answers what failed and the request id under which its traceback was
  logged on stderr, never the exception itself.
- A tools/call whose `arguments` is not an object is told so (`tool_errors.check_call_shape`, which
  `new_server` puts in the one middleware list every server gets).
- On stdio, a line that is not a JSON-RPC message is answered with a JSON-RPC error
  (`stdio.AnsweringReader`) instead of being dropped.
- A tool marked owner-only (`auth.OWNER_ONLY` in its `_meta`; every tool of an owner-only server)
  refuses user principals, delegated ones included, before it runs.
- A destructive tool waits for its person's yes where the client can ask (`consent`).
- A tool or prompt that does not exist, or a prompt called without a required argument, is a
  protocol error (-32602, invalid params) naming what exists or what is missing, as the spec asks;
  the SDK would answer an `isError` result, or -32603 with a traceback in the log.

Both tool paths live in `call_tool`, the documented place where a tool's failures surface,
each with its cause.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult, GetPromptResult
from mcp.types import Tool as MCPTool
from mcp_types import INVALID_PARAMS, InputRequiredResult
from pydantic import ValidationError

from . import auth, consent, request_state
from .auth import AccessMiddleware
from .errors import Forbidden, UserErrorMiddleware
from .logs import RequestIdMiddleware, request_id
from .settings import Settings
from .stdio import AnsweringReader
from .tool_errors import check_call_shape, explain

_NO_CODE = (lambda: None).__code__  # a tool that is not a plain function: nothing to see


class Server(MCPServer):
    """MCPServer whose tool errors are sentences, owner-only tools and confirmed erasure (see the
    module docstring)."""

    def __init__(self, *args: Any, owner_only: str | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.owner_only = owner_only  # why every tool is the owner's, or None

    def streams(self) -> bool:
        """Answers must be able to stream: a tool reports progress mid-call, or may ask its person (it erases)."""
        return any(consent.destructive(t.annotations) or "report_progress" in getattr(t.fn, "__code__", _NO_CODE).co_names
                   for t in self._tool_manager.list_tools())

    def is_owner_only(self, meta: dict[str, Any] | None) -> bool:
        return self.owner_only is not None or bool((meta or {}).get(auth.OWNER_ONLY))

    async def list_tools(self) -> list[MCPTool]:
        tools = await super().list_tools()
        if self.owner_only is None:
            return tools
        return [t.model_copy(update={"meta": {**(t.meta or {}), auth.OWNER_ONLY: True}}) for t in tools]

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        tool = self._tool_manager.get_tool(name)
        if tool is None:
            raise MCPError(INVALID_PARAMS, f"Unknown tool {name!r}: this server has no such tool; "
                                           "tools/list names the ones it has.")
        if context is not None and context.protocol_version is not None:  # in a request
            if self.is_owner_only(tool.meta) and (principal := auth.caller(context)).user_id is not None:
                raise Forbidden(f"Only the owner can call {name}; {principal.label()} cannot, so nothing was done.")
            if consent.destructive(tool.annotations) and consent.can_ask(context) and _valid(tool, arguments):
                principal = auth.caller(context)
                asked = await consent.ask(context, consent.question(name, tool.description, arguments, principal),
                                          name, principal)
                if isinstance(asked, InputRequiredResult):
                    return asked
                if not asked:
                    raise ToolError(f"Nothing was done: {name} needs a yes from the person it acts for, "
                                    "and they did not give it.")
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

    async def get_prompt(
        self, name: str, arguments: dict[str, Any] | None = None, context: Context[Any, Any] | None = None
    ) -> GetPromptResult | InputRequiredResult:
        prompt = self._prompt_manager.get_prompt(name)
        if prompt is None:
            known = ", ".join(sorted(p.name for p in self._prompt_manager.list_prompts())) or "none"
            raise MCPError(INVALID_PARAMS, f"Unknown prompt {name!r}; this server's prompts: {known}.")
        missing = sorted({a.name for a in prompt.arguments or () if a.required} - set(arguments or {}))
        if missing:
            raise MCPError(INVALID_PARAMS, f"The prompt {name!r} needs the argument(s) {', '.join(missing)}; "
                                           "prompts/list shows each argument with its description.")
        return await super().get_prompt(name, arguments, context)

    async def run_stdio_async(self) -> None:
        async with stdio_server() as (read_stream, write_stream):
            lowlevel = self._lowlevel_server
            await lowlevel.run(AnsweringReader(read_stream, write_stream), write_stream,
                               lowlevel.create_initialization_options())


def _valid(tool: Any, arguments: dict[str, Any]) -> bool:
    """Arguments the tool would accept: a call that will fail anyway asks nobody."""
    try:
        tool.fn_metadata.validate_arguments(arguments)
    except Exception:
        return False
    return True


try:
    VERSION = version("alphaavatar")
except PackageNotFoundError:  # a source tree that was never installed
    VERSION = "0.0.0"


def new_server(name: str, instructions: str, settings: Settings, owner_only: str | None = None) -> Server:
    """The MCP app of server `name` ('memory', …): serverInfo says `alphaavatar-<name>` and the version.
    Every tool, resource and prompt needs the caller's principal; `owner_only` (why) refuses user tokens.
    A call's `requestState` is sealed with the key every replica shares (`request_state`)."""
    return Server(f"alphaavatar-{name}", version=VERSION, instructions=instructions, owner_only=owner_only,
                  request_state_security=request_state.security(settings),
                  middleware=[RequestIdMiddleware(), UserErrorMiddleware(), AccessMiddleware(owner_only),
                              check_call_shape])
