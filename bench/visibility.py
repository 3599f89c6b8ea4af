"""What the audience filter (`present`) costs memory_search and memory_list, side by side in one run.

    python bench/visibility.py [--size 10000] [--queries 150] [--json OUT]

One `alphaavatar serve memory` over MCP stdio holds `--size` LoCoMo dialogue turns of 20 users
(a third each private, said in front of two others, for everyone) and some avatar knowledge. Each
query runs, in a shuffled order, with no `present`, with the user alone, with one other person
present, and with another person and an unknown one; the table gives p50/p95 and the ratio to no
filter, and how many results came back (the filter runs in the store query: pages stay full).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mcp import ClientSession
from mcp.client.stdio import stdio_client
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.memory_latency import DEFAULT_DATA, EXE, corpus, params, pct  # noqa: E402

USERS = [f"user-{i}" for i in range(20)]


def items(turns: list[str], start: int, n: int, rng: random.Random) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(start, start + n):
        user = USERS[i % len(USERS)]
        item: dict[str, Any] = {"content": f"{turns[i % len(turns)]} (#{i})", "user_id": user, "infer": False}
        kind = i % 3
        if kind == 1:
            item["present"] = [user, *rng.sample([u for u in USERS if u != user], 2)]
        elif kind == 2:
            item["visibility"] = "everyone"
        out.append(item)
    return out


def modes(user: str, rng: random.Random) -> dict[str, list[str] | None]:
    other = rng.choice([u for u in USERS if u != user])
    return {"no present": None, "alone": [user], "one other": [user, other], "other + someone": [user, other, "someone"]}


async def run(size: int, queries: int) -> dict[str, dict[str, dict[str, float]]]:
    turns, questions = corpus(DEFAULT_DATA)
    rng = random.Random(27)
    lat: dict[str, dict[str, list[float]]] = {"memory_search": {}, "memory_list": {}}
    got: dict[str, dict[str, list[int]]] = {"memory_search": {}, "memory_list": {}}
    with tempfile.TemporaryDirectory() as home:
        async with stdio_client(params([EXE, "serve", "memory"], home)) as (r, w), ClientSession(r, w) as s:
            await s.initialize()
            for start in range(0, size, 500):
                res = await s.call_tool("memory_add_batch", {"items": items(turns, start, min(500, size - start), rng)})
                assert not res.is_error, res.content
            await s.call_tool("memory_add_batch", {"items": [
                {"content": q, "scope": "avatar", "infer": False} for q in questions[:50]]})
            for _ in range(3):
                await s.call_tool("memory_search", {"query": "warm up", "user_id": USERS[0]})
            for n in range(queries):
                user = rng.choice(USERS)
                query = rng.choice(questions)
                order = list(modes(user, rng).items())
                rng.shuffle(order)
                for name, present in order:
                    for tool in ("memory_search", "memory_list"):
                        args: dict[str, Any] = {"user_id": user, "limit": 10}
                        if tool == "memory_search":
                            args["query"] = query
                        if present is not None:
                            args["present"] = present
                        t0 = time.perf_counter()
                        res = await s.call_tool(tool, args)
                        ms = (time.perf_counter() - t0) * 1000
                        assert not res.is_error, res.content
                        lat[tool].setdefault(name, []).append(ms)
                        got[tool].setdefault(name, []).append(len(res.structured_content["results"]))
                if n % 50 == 49:
                    print(f"{n + 1}/{queries} queries", file=sys.stderr)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for tool, by_mode in lat.items():
        base = pct(by_mode["no present"], 0.5)
        out[tool] = {name: {"p50_ms": pct(v, 0.5), "p95_ms": pct(v, 0.95), "p50_ratio": pct(v, 0.5) / base,
                            "mean_results": sum(got[tool][name]) / len(got[tool][name])}
                     for name in modes(USERS[0], rng) if (v := by_mode[name])}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=150)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    results = asyncio.run(run(a.size, a.queries))
    table = Table(title=f"Audience filter cost: {a.size} memories, {len(USERS)} users, {a.queries} queries per mode")
    for col in ("tool", "present", "p50 ms", "p95 ms", "p50 / no present", "results per call"):
        table.add_column(col)
    for tool, by_mode in results.items():
        for name, r in by_mode.items():
            table.add_row(tool, name, f"{r['p50_ms']:.1f}", f"{r['p95_ms']:.1f}", f"{r['p50_ratio']:.2f}",
                          f"{r['mean_results']:.1f}")
    Console(width=120).print(table)
    if a.json:
        a.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
