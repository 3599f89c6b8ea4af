"""Stdio lines that are not JSON-RPC messages get a JSON-RPC error back.

The SDK's stdio transport drops such a line silently (it logs it at debug), so a client whose
request could not be parsed — nested too deeply for the parser, a lone surrogate, cut short —
would wait for an answer forever. Over HTTP the same request is answered 400 with -32700.
"""

from __future__ import annotations

import re
from types import TracebackType
from typing import Any

import anyio
from mcp.shared.message import SessionMessage
from mcp_types import INVALID_REQUEST, PARSE_ERROR, ErrorData, JSONRPCError
from pydantic import ValidationError

_ID = re.compile(r'"id"\s*:\s*(-?\d{1,18}|"(?:[^"\\]|\\.){0,200}")')


def _request_id(text: str) -> int | str | None:
    """The id of the request a line was meant to be, when it can be read before its params."""
    found = _ID.search(text.split('"params"', 1)[0])
    if not found:
        return None
    raw = found.group(1)
    return int(raw) if raw[0] != '"' else raw[1:-1]


def answer(exc: Exception) -> JSONRPCError:
    """The JSON-RPC error for a line the transport could not take as a message."""
    errors = exc.errors() if isinstance(exc, ValidationError) else []
    bad_json = next((e for e in errors if e["type"] == "json_invalid"), None)
    if bad_json is not None:
        text = str(bad_json.get("input", ""))
        reason = str((bad_json.get("ctx") or {}).get("error", "not JSON"))
        return JSONRPCError(jsonrpc="2.0", id=_request_id(text), error=ErrorData(
            code=PARSE_ERROR, message=f"Parse error: {reason}. Send one JSON-RPC message as JSON per line "
                                      "(nested at most ~200 levels, text as valid UTF-8)."))
    message: dict[str, Any] = next((e["input"] for e in errors if isinstance(e.get("input"), dict) and "id" in e["input"]), {})
    rid = message.get("id") if isinstance(message.get("id"), int | str) else None
    return JSONRPCError(jsonrpc="2.0", id=rid, error=ErrorData(
        code=INVALID_REQUEST, message='Invalid request: not a JSON-RPC 2.0 message (an object with "jsonrpc": "2.0" '
                                      'and a "method", or a "result" or "error" with an "id").'))


class AnsweringReader:
    """The transport's read stream, answering (instead of passing on) every line it could not parse."""

    def __init__(self, inner: Any, write: Any):
        self._inner = inner
        self._write = write

    def __getattr__(self, name: str) -> Any:  # last_context and the like
        return getattr(self._inner, name)

    async def receive(self) -> Any:
        while True:
            item = await self._inner.receive()
            if not isinstance(item, Exception):
                return item
            await self._write.send(SessionMessage(answer(item)))

    async def aclose(self) -> None:
        await self._inner.aclose()

    def __aiter__(self) -> AnsweringReader:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> AnsweringReader:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()
