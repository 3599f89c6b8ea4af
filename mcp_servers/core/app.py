"""One constructor for every server's MCP app, so each gets the same name form, version and middleware."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from mcp.types import ToolAnnotations

from . import request_state
from .auth import OWNER_ONLY as OWNER_ONLY_KEY
from .auth import AccessMiddleware
from .errors import UserErrorMiddleware
from .logs import RequestIdMiddleware
from .server import Server
from .settings import Settings
from .tool_errors import check_call_shape

# The tool-annotation presets: every tool takes one, so a host knows what needs a person's yes
# (tests/test_tools_list.py checks each live tool carries one that fits).
READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)  # only reads our own data
READ_ONLY_WEB = ToolAnnotations(read_only_hint=True, open_world_hint=True)  # only reads, and reaches the web
# Adds or changes, losing nothing (what it replaces stays in a history), or only drives the character.
WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False)
WRITE_WEB = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True)
DESTRUCTIVE = ToolAnnotations(destructive_hint=True, open_world_hint=False)  # erases or merges away for good
OWNER_ONLY = {OWNER_ONLY_KEY: True}  # the `meta` of a tool no user may call (nor the owner acting as one)

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
