"""Keep the cyclic garbage collector off what a server loads once.

A loaded model brings hundreds of thousands of long-lived Python objects (torch, transformers,
pydantic schemas), and every full collection walks all of them while every request in flight
waits: under the 50-client soak, 13 full collections in two minutes took 40–450 ms each, which
was most of the p95. Once each model has loaded (the bulk of what a server keeps), `settle()`
collects once and moves what is alive into the permanent generation (`gc.freeze`),
so later collections walk only what requests create.
"""

from __future__ import annotations

import gc
import threading
from concurrent.futures import Future
from typing import Any

_lock = threading.Lock()


def settle() -> None:
    with _lock:
        gc.collect()
        gc.freeze()


def settle_after(loading: Future[Any]) -> Future[Any]:
    """`loading`, which settles the heap when it is done (also when it failed: its imports stay)."""
    loading.add_done_callback(lambda _: settle())
    return loading
