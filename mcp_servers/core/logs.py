"""Structured logs on stderr (stdout is the stdio transport): one JSON object per line."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from typing import Any

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_server_name = "alphaavatar"
_SECRET_KEYS = ("token", "api_key", "authorization", "password", "secret")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "server": _server_name,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = request_id.get()
        if rid is not None:
            entry["request_id"] = rid
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            entry.update({k: ("***" if any(s in k.lower() for s in _SECRET_KEYS) else v) for k, v in extra.items()})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup_logging(server: str, level: str = "INFO") -> None:
    """Route every logger to stderr as JSON lines tagged with the server name."""
    global _server_name
    _server_name = server
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "sentence_transformers", "mcp.server.lowlevel.server", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class RequestIdMiddleware:
    """MCP server middleware: every log line written while handling a request carries its id."""

    async def __call__(self, ctx: Any, call_next: Any) -> Any:
        token = request_id.set(None if ctx.request_id is None else str(ctx.request_id))
        try:
            return await call_next(ctx)
        finally:
            request_id.reset(token)
