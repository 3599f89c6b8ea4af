"""Tool-argument types every server shares, so a boundary is spelled one way; and `arguments_of`, so
that tools taking the same arguments declare them once.

The bounds live here; what an argument means differs per server, so each server adds its own
description at the use site (`Annotated[params.UserId, Field(description=...)]`: pydantic merges the
two, and the published schema is the one a single `Field` would give).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from pydantic import Field

Tool = TypeVar("Tool", bound=Callable[..., Any])

MAX_USER_ID = 200

UserId = Annotated[str | None, Field(default=None, max_length=MAX_USER_ID)]
"""An optional user id: whose data a call acts on (a user-scoped token is pinned to its own)."""

NamedUserId = Annotated[str, Field(min_length=1, max_length=MAX_USER_ID)]
"""A user id a call must name (forget, reassign)."""

Cursor = Annotated[str | None, Field(default=None, max_length=128, description="next_cursor of the previous page.")]
"""A page cursor, as `core.cursors` writes it (leave it out for the first page)."""

Progress = Callable[[float, float, str], Awaitable[None]]
"""A progress callback (done, total, message): MCP's `ctx.report_progress` is one."""


def arguments_of(template: Callable[..., Any], **changed: tuple[Any, Any] | None) -> Callable[[Tool], Tool]:
    """Publish `template`'s arguments as the decorated tool's, in its order: declared once, one input schema.

    `changed` leaves an argument out (None) or gives it another (annotation, default). The tool keeps its
    name, docstring and return annotation (its output schema), and takes the arguments as keywords; the SDK
    reads the signature set here, as it reads any tool's."""

    def give(tool: Tool) -> Tool:
        shared = inspect.signature(template, eval_str=True)
        kept: list[inspect.Parameter] = []
        for p in shared.parameters.values():
            if p.name not in changed:
                kept.append(p)
            elif (change := changed[p.name]) is not None:
                kept.append(p.replace(annotation=change[0], default=change[1]))
        returns = inspect.signature(tool, eval_str=True).return_annotation
        tool.__signature__ = shared.replace(parameters=kept, return_annotation=returns)  # type: ignore[attr-defined]
        return tool

    return give
