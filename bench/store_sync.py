"""What a durable write costs on this machine: our WAL sync against Qdrant Edge's own flush().

    python bench/store_sync.py [--writes 40] [--batch 1]

Writes `--writes` upserts of `--batch` 384-d points to a fresh Edge store, each made durable
(a) the way `EdgeStore` does it (update, then fdatasync of the write-ahead log) and (b) with
Edge's `flush()`, from a worker thread, while the main thread runs a 1 ms ticker: the longest
tick gap is how long the whole process (an MCP server's event loop) stood still.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.memory_latency import pct  # noqa: E402
from mcp_servers.core.store import CollectionSpec, Item  # noqa: E402
from mcp_servers.core.store.edge import EdgeStore  # noqa: E402


def run(write: Callable[[], None], n: int) -> tuple[list[float], float]:
    """(per-write ms, the longest stall of the main thread in ms) for n writes on a worker thread."""
    times: list[float] = []

    def work() -> None:
        for _ in range(n):
            t = time.perf_counter()
            write()
            times.append((time.perf_counter() - t) * 1000)

    worker = threading.Thread(target=work)
    worker.start()
    gap, last = 0.0, time.perf_counter()
    while worker.is_alive():
        time.sleep(0.001)
        now = time.perf_counter()
        gap, last = max(gap, now - last), now
    return times, gap * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--writes", type=int, default=40)
    ap.add_argument("--batch", type=int, default=1, help="points per write")
    a = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="alphaavatar-sync-"))
    try:
        store = EdgeStore(home / "c", CollectionSpec("c", 384, sparse=False))

        def items() -> list[Item]:
            return [Item(str(uuid.uuid4()), {"t": "x" * 300}, dense=[0.1] * 384) for _ in range(a.batch)]

        ours = run(lambda: store.upsert(items()), a.writes)

        def flushed() -> None:
            store.upsert(items())
            store._shard.flush()

        edge = run(flushed, a.writes)
        store.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)
    t = Table(title=f"A durable write of {a.batch} point(s), {a.writes} writes from a worker thread")
    for col in ("how", "p50 ms", "p95 ms", "longest stall of the process, ms"):
        t.add_column(col, justify="left" if col == "how" else "right")
    for name, (times, gap) in (("upsert + fdatasync of the WAL (EdgeStore)", ours),
                               ("upsert + WAL sync + Edge flush()", edge)):
        t.add_row(name, f"{pct(times, .5):.1f}", f"{pct(times, .95):.1f}", f"{gap:.0f}")
    Console().print(t)


if __name__ == "__main__":
    main()
