"""Every tool error is a sentence a person can act on.

`Server` is the SDK's MCPServer with one change, in `call_tool` (the documented place where a
tool's failures surface, each with its cause): arguments that fail validation are explained
in words instead of pydantic's report; text that is not valid Unicode (lone surrogates) is
refused before any tool sees it; a crash answers what failed and the request id under which
its traceback was logged on stderr, never the exception itself.
"""

from __future__ import annotations

import json
import re
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.types import CallToolResult
from mcp_types import InputRequiredResult
from pydantic import ValidationError

from .logs import request_id

MAX_SHOWN = 5  # problems listed in one answer
_FIELD = re.compile(r"[a-z_][a-z0-9_]*")
_TYPE_TAGS = {"str", "int", "float", "bool", "none", "list", "dict", "bytes", "literal", "datetime"}


def _path(loc: tuple[int | str, ...]) -> str:
    """`items[3].metadata` for pydantic's location, without the tags it adds for union members."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _FIELD.fullmatch(part) and part not in _TYPE_TAGS:
            out += f".{part}" if out else part
    return out or "the arguments"


def _shown(value: Any) -> str:
    text = json.dumps(value, default=str)  # ASCII: lone surrogates and control characters escaped
    return text if len(text) <= 60 else text[:57] + "..."


def _problem(err: Any) -> str:
    where = _path(tuple(err.get("loc", ())))
    kind = err.get("type", "")
    if kind == "missing":
        return f"{where} is required"
    if kind == "extra_forbidden":
        return f"{where} is not an argument of this tool"
    msg = str(err.get("msg", "is not valid"))
    msg = re.sub(r"^(Value error|Assertion failed), ", "", msg)
    msg = msg[:1].lower() + msg[1:]
    got = f" (got {_shown(err['input'])})" if "input" in err and kind not in ("value_error", "assertion_error") else ""
    return f"{where}: {msg}{got}"


def explain(exc: ValidationError, tool: str) -> str:
    """The argument problems of one call, in words (the same problem is said once)."""
    problems = list(dict.fromkeys(_problem(e) for e in exc.errors(include_url=False)))
    more = f"; and {len(problems) - MAX_SHOWN} more" if len(problems) > MAX_SHOWN else ""
    return (f"Invalid arguments for {tool}: " + "; ".join(problems[:MAX_SHOWN]) + more
            + f". Correct them and call {tool} again; its input schema describes each argument.")


def bad_text(arguments: Any) -> str | None:
    """Where the arguments hold text that is not valid Unicode, said as a sentence (or None)."""
    stack: list[tuple[Any, str]] = [(arguments, "")]
    while stack:
        value, path = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                sub = f"{path}.{key}" if path else str(key)
                if isinstance(key, str) and not _unicode(key):
                    return f"The argument name {_shown(key)} is not valid Unicode text"
                stack.append((item, sub))
        elif isinstance(value, list):
            stack.extend((item, f"{path}[{i}]") for i, item in enumerate(value))
        elif isinstance(value, str) and not _unicode(value):
            at = next(i for i, ch in enumerate(value) if 0xD800 <= ord(ch) <= 0xDFFF)
            return (f"{path or 'An argument'} holds a lone UTF-16 surrogate (U+{ord(value[at]):04X} at character "
                    f"{at}), which is not valid Unicode text; send the text as valid UTF-8")
    return None


def _unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class Server(MCPServer):
    """MCPServer whose tool errors are sentences (see the module docstring)."""

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        problem = bad_text(arguments)
        if problem:
            raise ToolError(f"Error executing tool {name}: {problem}.")
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
