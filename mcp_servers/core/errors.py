"""Errors a person can act on. Raised inside tools, they become MCP tool errors (isError=true)."""

from __future__ import annotations

from mcp.server.mcpserver.exceptions import ToolError


class UserError(ToolError):
    """Bad input or a request that cannot be served; the message says what to do instead."""


class NotFound(UserError):
    """An id that names nothing."""


class Forbidden(UserError):
    """The caller's token does not allow this."""


class StoreLocked(RuntimeError):
    """A store directory is held by another process."""
