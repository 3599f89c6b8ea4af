"""Tool-argument types every server shares, so a boundary is spelled one way.

The bounds live here; what an argument means differs per server, so each server adds its own
description at the use site (`Annotated[params.UserId, Field(description=...)]`: pydantic merges the
two, and the published schema is the one a single `Field` would give).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from pydantic import Field

MAX_USER_ID = 200

UserId = Annotated[str | None, Field(default=None, max_length=MAX_USER_ID)]
"""An optional user id: whose data a call acts on (a user-scoped token is pinned to its own)."""

NamedUserId = Annotated[str, Field(min_length=1, max_length=MAX_USER_ID)]
"""A user id a call must name (forget, reassign)."""

Cursor = Annotated[str | None, Field(default=None, max_length=128, description="next_cursor of the previous page.")]
"""A page cursor, as `core.cursors` writes it (leave it out for the first page)."""

Progress = Callable[[float, float, str], Awaitable[None]]
"""A progress callback (done, total, message): MCP's `ctx.report_progress` is one."""
