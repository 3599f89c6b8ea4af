"""Memory server replicas on the Qdrant stand-in: add throughput and search p95 with 1 and with 3
replicas behind the round-robin balancer (stateless MCP 2026-07-28 clients), and the stand-in's
own cost: the same store calls made straight to it with qdrant-client, next to qdrant-client's
in-process local engine (what the stand-in runs on). Both deployments run in one go, on one machine.

    PYTHONPATH=. .venv/bin/python bench/replicas.py --adds 240 --searches 120 --clients 8
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

from qdrant_client import QdrantClient

from bench.figures import run_benchmark
from mcp_servers.core.store import DenseQuery, Item, SparseQuery, Where
from mcp_servers.core.store.server import ServerStore
from mcp_servers.memory.records import memories_spec
from tests.replicas import Deployment, ok, qdrant_stand_in, stateless
from tests.support import server_env

TOPICS = ["tea", "hiking", "violin", "chess", "gardening", "trains", "pottery", "astronomy"]


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


async def deployment(n: int, qdrant: str, root: Path, adds: int, searches: int, clients: int) -> dict[str, float]:
    with Deployment("memory", root, qdrant, server_env(root), n=n) as d:
        async with stateless(d.mcp) as warm:  # each replica embeds once before the clock starts
            for _ in range(n):
                await ok(warm, "memory_search", {"query": "warm up", "user_id": "warm"})
        users = [f"b{uuid.uuid4().hex[:6]}" for _ in range(clients)]

        async def adder(k: int) -> None:
            async with stateless(d.mcp) as c:
                for i in range(k, adds, clients):
                    text = f"{users[k]} likes {TOPICS[i % len(TOPICS)]} number {i} {uuid.uuid4().hex[:6]}"
                    await ok(c, "memory_add", {"content": text, "user_id": users[k], "infer": False})

        start = time.perf_counter()
        await asyncio.gather(*[adder(k) for k in range(clients)])
        add_s = time.perf_counter() - start
        lat: list[float] = []

        async def searcher(k: int) -> None:
            async with stateless(d.mcp) as c:
                for i in range(k, searches, clients):
                    t = time.perf_counter()
                    await ok(c, "memory_search", {"query": f"who likes {TOPICS[i % len(TOPICS)]}",
                                                  "user_id": users[i % clients]})
                    lat.append((time.perf_counter() - t) * 1000)

        start = time.perf_counter()
        await asyncio.gather(*[searcher(k) for k in range(clients)])
        search_s = time.perf_counter() - start
    return {"replicas": n, "adds_per_s": adds / add_s, "search_p50_ms": pct(lat, 0.5), "search_p95_ms": pct(lat, 0.95),
            "searches_per_s": searches / search_s}


def store_calls(client: QdrantClient, calls: int) -> dict[str, float]:
    """p50/p95 ms of one upsert and one hybrid search on a memories-shaped collection of 500 points."""
    spec = memories_spec(384)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        store = ServerStore(client, f"bench_{uuid.uuid4().hex[:6]}", spec)
    vec = [0.05] * 384
    store.upsert([Item(str(uuid.uuid4()), {"user_id": f"u{i % 10}", "content": f"fact {i}"}, vec, f"fact {i} about tea")
                  for i in range(500)])
    up, search = [], []
    for i in range(calls):
        t = time.perf_counter()
        store.upsert([Item(str(uuid.uuid4()), {"user_id": "u1", "content": f"more {i}"}, vec, f"more {i} on trains")])
        up.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        store.search([DenseQuery(vec), SparseQuery("tea trains")], Where(equals={"user_id": "u1"}), 10)
        search.append((time.perf_counter() - t) * 1000)
    return {"upsert_p50_ms": pct(up, 0.5), "upsert_p95_ms": pct(up, 0.95),
            "search_p50_ms": pct(search, 0.5), "search_p95_ms": pct(search, 0.95)}


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="bench-replicas-"))
    out: dict[str, Any] = {"adds": args.adds, "searches": args.searches, "clients": args.clients}
    with qdrant_stand_in(root / "qdrant") as url:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out["store_calls"] = {
                "stand-in over REST": await asyncio.to_thread(store_calls, QdrantClient(url=url), args.store_calls),
                "local engine in-process": await asyncio.to_thread(store_calls, QdrantClient(location=":memory:"),
                                                                   args.store_calls)}
        out["deployments"] = []
        for n in (1, 3):
            out["deployments"].append(await deployment(n, url, root / f"r{n}", args.adds, args.searches, args.clients))
    return out


def show(f: dict[str, Any]) -> None:
    print(f"memory replicas on the Qdrant stand-in: {f['adds']} adds, {f['searches']} searches, {f['clients']} clients")
    print(f"{'replicas':>8} {'adds/s':>8} {'search p50 ms':>14} {'search p95 ms':>14} {'searches/s':>11}")
    for d in f["deployments"]:
        print(f"{d['replicas']:>8} {d['adds_per_s']:>8.1f} {d['search_p50_ms']:>14.1f} {d['search_p95_ms']:>14.1f} "
              f"{d['searches_per_s']:>11.1f}")
    if len(f["deployments"]) == 2:
        one, three = f["deployments"]
        print(f"3 vs 1 replica: adds x{three['adds_per_s'] / one['adds_per_s']:.2f}, "
              f"search p95 x{three['search_p95_ms'] / one['search_p95_ms']:.2f}")
    print("the stand-in's own cost (one store call, 500-point collection):")
    print(f"{'':>24} {'upsert p50':>10} {'p95':>7} {'search p50':>11} {'p95':>7}")
    for name, c in f["store_calls"].items():
        print(f"{name:>24} {c['upsert_p50_ms']:>10.2f} {c['upsert_p95_ms']:>7.2f} {c['search_p50_ms']:>11.2f} "
              f"{c['search_p95_ms']:>7.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adds", type=int, default=240)
    parser.add_argument("--searches", type=int, default=120)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--store-calls", type=int, default=200)
    run_benchmark(parser, measure, show)
