"""Honest readiness: a part that is loading says so, one that failed says why (`/healthz` reads this)."""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Future
from typing import Any, Literal

FAILED = "failed: "
Status = Literal["ok", "starting", "failed"]


def load_state(loading: Future[Any] | None) -> str:
    """'loading', 'ready' or 'failed: <reason>' for a model loading on a worker thread."""
    if loading is None or not loading.done():
        return "loading"
    exc = loading.exception()
    return "ready" if exc is None else f"{FAILED}{type(exc).__name__}: {exc}"


def status(health: Mapping[str, object], ready: bool) -> Status:
    """A server's status: 'failed' when a part of it failed to load, else 'ok' once ready."""
    if any(isinstance(v, str) and v.startswith(FAILED) for v in health.values()):
        return "failed"
    return "ok" if ready else "starting"
