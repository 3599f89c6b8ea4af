"""The one way async code reaches a store: on a worker thread, never on the event loop."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import anyio.to_thread

P = ParamSpec("P")
T = TypeVar("T")


async def off_loop(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a store call, or a sync helper that makes several, on a worker thread and await it."""
    return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))
