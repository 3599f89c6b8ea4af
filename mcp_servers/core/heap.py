"""Keep the cyclic garbage collector off what a server loads once.

A loaded model brings hundreds of thousands of long-lived Python objects (torch, transformers,
pydantic schemas), and every full collection walks all of them while every request in flight
waits, and such pauses made most of the tail latency under load (docs/benchmarks.md). Once each
model has loaded (the bulk of what a server keeps), `settle()`
collects once and moves what is alive into the permanent generation (`gc.freeze`),
so later collections walk only what requests create. What requests create still reaches the
oldest generation (sessions, their streams and tasks); one full collection every 100
middle-generation collections instead of 10 makes those pauses ten times rarer, while cyclic
garbage still goes within a minute.

Below Python, glibc gives threads their own malloc arenas (up to eight per core) and returns
little of them: with the worker threads a server's store calls and models run on, its heap grows
beyond its data under load. `limit_arenas()` caps them at two.
"""

from __future__ import annotations

import ctypes
import gc
import os
import sys
import threading
from concurrent.futures import Future
from typing import Any

_lock = threading.Lock()
FULL_EVERY = 100  # middle-generation collections per full collection (CPython's default: 10)
ARENAS = 2
_M_ARENA_MAX = -8  # mallopt's parameter number in glibc's malloc.h


def limit_arenas() -> bool:
    """Cap glibc's malloc arenas at ARENAS for threads started from now on (call before starting any);
    False where there is no glibc or MALLOC_ARENA_MAX already decides."""
    if not sys.platform.startswith("linux") or "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # musl, or no such library
        return False
    return bool(mallopt(_M_ARENA_MAX, ARENAS))


def settle() -> None:
    with _lock:
        gc.collect()
        gc.freeze()
        young, middle, _ = gc.get_threshold()
        gc.set_threshold(young, middle, FULL_EVERY)


def settle_after(loading: Future[Any]) -> Future[Any]:
    """`loading`, which settles the heap when it is done (also when it failed: its imports stay)."""
    loading.add_done_callback(lambda _: settle())
    return loading
