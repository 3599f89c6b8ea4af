"""Tool errors in words: argument problems said as sentences instead of pydantic's report, and
a tools/call whose `arguments` is not a JSON object told so."""

from __future__ import annotations

import json
import re
from typing import Any

from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS
from pydantic import ValidationError

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


async def check_call_shape(ctx: Any, call_next: Any) -> Any:
    """Middleware: a tools/call whose name or arguments have the wrong JSON type is told which.

    The SDK would answer only "Invalid request parameters"."""
    if ctx.method == "tools/call" and isinstance(ctx.params, dict):
        name, arguments = ctx.params.get("name"), ctx.params.get("arguments")
        if not isinstance(name, str):
            raise MCPError(INVALID_PARAMS, "tools/call needs 'name', the tool's name as a string (see tools/list).")
        if arguments is not None and not isinstance(arguments, dict):
            got = {list: "a list", str: "a string", bool: "true or false"}.get(type(arguments), "a number")
            raise MCPError(INVALID_PARAMS, f"tools/call of {name[:80]!r} needs 'arguments' as a JSON object "
                                           f"mapping argument names to values, not {got}.")
    return await call_next(ctx)
