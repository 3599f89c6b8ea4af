"""Export a user's memories as a download, streamed page by page from memory_list (never held whole)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from .mcp_client import call, session

EXPORT_SCOPES = ("user", "session", "tool")  # the user's own; avatar-wide memories belong to nobody
PAGE = 200


class ExportError(Exception):
    """memory_list refused (the token's scope, a bad user id): the message says why."""


async def check(base_url: str, token: str | None, user_id: str | None) -> None:
    """Refuse before the download starts (headers sent, a refusal could only cut the file)."""
    async with session(base_url, "memory", token) as s:
        res = await call(s, "memory_list", {"limit": 1, **({"user_id": user_id} if user_id else {})})
    if not res["ok"]:
        raise ExportError(res["text"])


async def _pages(base_url: str, token: str | None, user_id: str | None) -> AsyncIterator[list[dict[str, Any]]]:
    async with session(base_url, "memory", token) as s:
        for scope in EXPORT_SCOPES:
            cursor = None
            while True:
                args: dict[str, Any] = {"scope": scope, "limit": PAGE, "cursor": cursor}
                if user_id:
                    args["user_id"] = user_id
                res = await call(s, "memory_list", args)
                if not res["ok"]:
                    raise ExportError(res["text"])
                yield res["data"]["results"]
                cursor = res["data"]["next_cursor"]
                if cursor is None:
                    break


def _markdown(m: dict[str, Any]) -> str:
    when = f" ({m['occurred_at'][:19]})" if m.get("occurred_at") else ""
    session = f" [session {m['session_id']}]" if m.get("session_id") else ""
    return f"- **{m['scope']}**{when}{session}: {m['content']}  \n  `{m['id']}`\n"


async def export_stream(base_url: str, token: str | None, user_id: str | None, fmt: str) -> AsyncIterator[str]:
    """JSON: one array of memory objects. Markdown: a heading, then one bullet per memory."""
    first = True
    yield "[\n" if fmt == "json" else f"# Memories of {user_id or 'default'}\n\n"
    async for page in _pages(base_url, token, user_id):
        for m in page:
            if fmt == "json":
                yield ("" if first else ",\n") + json.dumps(m, ensure_ascii=False)
            else:
                yield _markdown(m)
            first = False
    yield "\n]\n" if fmt == "json" else ""
