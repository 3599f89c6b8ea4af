"""What a durable write costs on this machine: our WAL sync against Qdrant Edge's own flush().

    python bench/store_sync.py [--writes 40] [--batch 1] [--stream 20000]

Writes `--writes` upserts of `--batch` 384-d points to a fresh Edge store, each made durable
(a) the way `EdgeStore` does it (update, then fdatasync of the write-ahead log) and (b) with
Edge's `flush()`, from a worker thread, while the main thread runs a 1 ms ticker: the longest
tick gap is how long the whole process (an MCP server's event loop) stood still.

Then the checkpoint policy over a stream of `--stream` one-point writes (memory's collection,
each in a fresh process): a checkpoint every `CHECKPOINT_POINTS` points against one only when
the log rolls (every 32 MB) — writes per second, the longest stall, the heap's growth (RSS not
backed by a file) over the stream, and what opening the written store takes in another fresh
process: the data's share (`--stream 0` skips this part).
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.memory_latency import pct  # noqa: E402
from mcp_servers.core.store import (  # noqa: E402
    CollectionSpec,
    Item,
    edge,
)
from mcp_servers.memory.records import memories_spec  # noqa: E402
from tests.support import heap_mb  # noqa: E402


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


def stream(home: Path, n: int, every: int) -> tuple[float, float, float]:
    """(writes/s, longest stall ms, heap growth MB) for n one-point memories written to a store in
    `home` with a checkpoint every `every` points; run in a fresh process, so heaps compare."""
    edge.CHECKPOINT_POINTS = every
    store = edge.EdgeStore(home / "m", memories_spec(384))
    start, seq = heap_mb(), iter(range(n))

    def write() -> None:
        i = next(seq)
        text = f"note {i} about the garden, the bees and the roof"
        store.upsert([Item(str(uuid.uuid4()), {"content": text, "scope": "user", "user_id": f"u{i % 10}",
                                               "hash": uuid.uuid4().hex, "created_ts": float(i), "metadata": {}},
                           dense=[(i % 97) / 97 + 0.01] * 384, text=text)])

    t = time.perf_counter()
    _, gap = run(write, n)
    rate, grown = n / (time.perf_counter() - t), heap_mb() - start
    store.close()
    return rate, gap, grown


def reopen(home: Path) -> float:
    """The heap growth (MB) of opening that store in a fresh process: what its data takes in memory."""
    start = heap_mb()
    store = edge.EdgeStore(home / "m", memories_spec(384))
    store.count()
    grown = heap_mb() - start
    store.close()
    return grown


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--writes", type=int, default=40)
    ap.add_argument("--batch", type=int, default=1, help="points per write")
    ap.add_argument("--stream", type=int, default=20_000, help="one-point writes for the checkpoint policy")
    a = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="alphaavatar-sync-"))
    try:
        store = edge.EdgeStore(home / "c", CollectionSpec("c", 384, sparse=False))

        def items() -> list[Item]:
            return [Item(str(uuid.uuid4()), {"t": "x" * 300}, dense=[0.1] * 384) for _ in range(a.batch)]

        ours = run(lambda: store.upsert(items()), a.writes)

        def flushed() -> None:
            store.upsert(items())
            store._shard.flush()

        flushing = run(flushed, a.writes)
        store.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)
    t = Table(title=f"A durable write of {a.batch} point(s), {a.writes} writes from a worker thread")
    for col in ("how", "p50 ms", "p95 ms", "longest stall of the process, ms"):
        t.add_column(col, justify="left" if col == "how" else "right")
    for name, (times, gap) in (("upsert + fdatasync of the WAL (EdgeStore)", ours),
                               ("upsert + WAL sync + Edge flush()", flushing)):
        t.add_row(name, f"{pct(times, .5):.1f}", f"{pct(times, .95):.1f}", f"{gap:.0f}")
    Console().print(t)
    if not a.stream:
        return
    t = Table(title=f"Checkpoints over a stream of {a.stream} one-point memories (a fresh process each)")
    for col in ("checkpoint", "writes/s", "longest stall ms", "heap after the writes MB", "heap reopened fresh MB"):
        t.add_column(col, justify="left" if col == "checkpoint" else "right")
    for name, every in ((f"every {edge.CHECKPOINT_POINTS} points and when the log rolls", edge.CHECKPOINT_POINTS),
                        ("only when the log rolls (32 MB)", 10**12)):
        home = Path(tempfile.mkdtemp(prefix="alphaavatar-stream-"))
        try:
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
                rate, gap, written = pool.submit(stream, home, a.stream, every).result()
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
                reopened = pool.submit(reopen, home).result()
        finally:
            shutil.rmtree(home, ignore_errors=True)
        t.add_row(name, f"{rate:.0f}", f"{gap:.0f}", f"{written:+.1f}", f"{reopened:+.1f}")
    Console().print(t)


if __name__ == "__main__":
    main()
