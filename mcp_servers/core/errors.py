"""Errors a person can act on. Raised inside tools, they become MCP tool errors (isError=true)."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS


class UserError(ToolError):
    """Bad input or a request that cannot be served; the message says what to do instead."""


class NotFound(UserError):
    """An id that names nothing."""


class Forbidden(UserError):
    """The caller's token does not allow this."""


class StoreLocked(RuntimeError):
    """A store directory is held by another process."""


class UserErrorMiddleware:
    """MCP server middleware: a UserError raised by a resource or a prompt reaches the client with its
    message. Tools turn it into a tool error themselves; for resources and prompts the SDK passes only
    MCPError through and replaces anything else with a bare "Error reading resource …"."""

    async def __call__(self, ctx: Any, call_next: Any) -> Any:
        try:
            return await call_next(ctx)
        except Exception as exc:
            cause: BaseException | None = exc
            while cause is not None and not isinstance(cause, UserError):
                cause = cause.__cause__ or cause.__context__
            if cause is None:
                raise
            raise MCPError(INVALID_PARAMS, str(cause)) from None
