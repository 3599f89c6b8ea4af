"""Research server figures, over MCP stdio as a host sees them (one run, printed table).

    .venv/bin/python bench/research.py [--corpus-locomo DIR] [--questions N] [--chunks 10000] [--home DIR]
                                       [--web-only] [--json OUT]

1. Quick research with 5 sub-queries against the fake Tavily answering in 300 ms (no LLM, so the
   whole call is "before synthesis"): wall time with the default concurrency, and with
   ALPHAAVATAR_RESEARCH_CONCURRENCY=1 (serial) for comparison; then the same research again,
   answered from the search cache.
2. Source quality: each session of each LoCoMo conversation added as one corpus document titled
   conv<ID>-session<N> (its turns as "[date] speaker: text" lines), every single-hop question
   researched with sources=corpus: how often all evidence sessions are among the first 3 sources.
   Baseline in the same run: sessions ranked by plain word overlap with the question.
3. corpus_search latency once the corpus holds `--chunks` passages (LoCoMo turns regrouped into
   further documents to reach the size).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from mcp import ClientSession
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.figures import save  # noqa: E402
from bench.locomo import DEFAULT_DATA, Conversation, load  # noqa: E402
from bench.memory_latency import pct  # noqa: E402
from tests.fakes.tavily_server import FakeTavily  # noqa: E402
from tests.support import server_env, stdio_session  # noqa: E402

QUESTION = ("What energy density do solid-state batteries reach? When does car production start? "
            "Which companies run pilot lines? How safe are solid electrolytes?")
SINGLE_HOP = 4


async def tool(s: ClientSession, name: str, args: dict[str, Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    res = await s.call_tool(name, args, read_timeout_seconds=300)
    ms = (time.perf_counter() - t0) * 1000
    if res.is_error:
        raise RuntimeError(f"{name}: {' '.join(getattr(c, 'text', '') for c in res.content)}")
    return res.structured_content, ms


@contextlib.asynccontextmanager
async def server(home: Path, **env: str) -> AsyncIterator[ClientSession]:
    async with stdio_session("research", server_env(home, **env)) as s:
        yield s


async def web_figures(tmp: Path) -> dict[str, float]:
    out: dict[str, float] = {}
    with FakeTavily(delay=0.3) as fake:
        base = {"TAVILY_API_KEY": fake.api_key, "TAVILY_BASE_URL": fake.base_url,
                "ALPHAAVATAR_RESEARCH_QUICK_QUERIES": "5"}
        for label, extra in [("parallel", {}), ("serial", {"ALPHAAVATAR_RESEARCH_CONCURRENCY": "1"})]:
            async with server(tmp / label, **base, **extra) as s:
                await tool(s, "web_search", {"query": "warm up the connection"})
                fake.max_in_flight = 0
                data, ms = await tool(s, "research", {"question": QUESTION, "sources": "web"})
                assert len(data["sub_queries"]) == 5, data["sub_queries"]
                out[f"{label}_ms"] = ms
                out[f"{label}_in_flight"] = fake.max_in_flight
                if label == "parallel":
                    hits = []
                    for _ in range(20):
                        again, ms = await tool(s, "research", {"question": QUESTION, "sources": "web"})
                        assert again["stats"]["cache_hits"] == 5 and again["stats"]["provider_calls"] == 0
                        hits.append(ms)
                    out["cache_hit_p50_ms"] = statistics.median(hits)
                    out["cache_hit_server_ms"] = again["stats"]["elapsed_ms"]
        # The per-process rate limit: 15 different searches at once, 5 calls/s allowed.
        async with server(tmp / "rate", **base, ALPHAAVATAR_RESEARCH_RATE_PER_S="5") as s:
            fake.delay, start = 0.0, len(fake.arrivals)
            await asyncio.gather(*(tool(s, "web_search", {"query": f"rate limited query {i}"}) for i in range(15)))
            times = fake.arrivals[start:]
            out["rate_calls"], out["rate_span_s"] = len(times), times[-1] - times[0]
    return out


def documents(path: Path, conv: Conversation) -> dict[str, str]:
    """One document per session: its turns as "[date] speaker: text" lines."""
    docs: dict[str, list[str]] = {}
    for t in conv.turns:
        when = t.when.strftime("%-I:%M %p on %-d %B, %Y").replace("AM", "am").replace("PM", "pm")
        docs.setdefault(f"conv{path.stem}-session{t.session}", []).append(f"[{when}] {t.text}")
    return {title: "\n".join(lines) for title, lines in docs.items()}


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9']+", text.lower()))


async def corpus_figures(tmp: Path, data: Path, max_questions: int, chunks: int) -> dict[str, float]:
    out: dict[str, float] = {}
    convs = [(p, load(p)) for p in sorted(data.glob("*.json"))]
    async with server(tmp / "corpus") as s:
        docs: dict[str, str] = {}
        t0 = time.perf_counter()
        total_chunks = 0
        for path, conv in convs:
            for title, text in documents(path, conv).items():
                added, _ = await tool(s, "corpus_add", {"text": text, "title": title})
                total_chunks += added["document"]["chunks"]
                docs[title] = text
        out["locomo_docs"], out["locomo_chunks"] = len(docs), total_chunks
        out["add_s"] = time.perf_counter() - t0

        ours, overlap, lat = [], [], []
        for path, conv in convs:
            session_of = {t.dia_id: f"conv{path.stem}-session{t.session}" for t in conv.turns}
            asked = 0
            for q in conv.questions:
                if q.category != SINGLE_HOP or (max_questions and asked >= max_questions):
                    continue
                asked += 1
                want = {session_of[e] for e in q.evidence}
                res, ms = await tool(s, "research", {"question": q.text, "sources": "corpus"})
                lat.append(ms)
                ours.append(want <= {src["title"] for src in res["sources"][:3]})
                qw = words(q.text)
                ranked = sorted(docs, key=lambda d: -len(qw & words(docs[d])))
                overlap.append(want <= set(ranked[:3]))
        out["questions"] = len(ours)
        out["top3_pct"] = 100 * statistics.mean(ours)
        out["overlap_top3_pct"] = 100 * statistics.mean(overlap)
        out["research_p50_ms"], out["research_p95_ms"] = statistics.median(lat), pct(lat, 0.95)

        # Grow the corpus to `chunks` passages with regrouped turns (new text, so no duplicates).
        lines = [ln for text in docs.values() for ln in text.splitlines()]
        rng = random.Random(7)
        n = 0
        while total_chunks < chunks:
            sample = rng.sample(lines, 60)
            added, _ = await tool(s, "corpus_add", {"text": "\n".join(sample), "title": f"filler-{n}"})
            total_chunks += added["document"]["chunks"]
            n += 1
        out["chunks"] = total_chunks
        questions = [q.text for _, c in convs for q in c.questions][:300]
        lat, inside = [], []
        for q in questions:
            found, ms = await tool(s, "corpus_search", {"query": q, "limit": 10})
            lat.append(ms)
            inside.append(found["elapsed_ms"])
        out["search_p50_ms"], out["search_p95_ms"] = statistics.median(lat), pct(lat, 0.95)
        out["search_server_p50_ms"], out["search_server_p95_ms"] = statistics.median(inside), pct(inside, 0.95)
        out["search_queries"] = len(lat)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus-locomo", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--questions", type=int, default=0, help="single-hop questions per conversation (0: all)")
    ap.add_argument("--chunks", type=int, default=10_000)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--web-only", action="store_true", help="only the provider figures (fast)")
    ap.add_argument("--home", type=Path, help="keep the corpus here: a second run finds its documents already "
                    "indexed (same text, same document) and skips the embedding")
    a = ap.parse_args()

    async def run() -> dict[str, Any]:
        with tempfile.TemporaryDirectory() as tmp:
            results: dict[str, Any] = {"web": await web_figures(Path(tmp))}
            if a.corpus_locomo.is_dir() and not a.web_only:
                home = a.home or Path(tmp)
                results["corpus"] = await corpus_figures(home, a.corpus_locomo, a.questions, a.chunks)
            return results

    r = asyncio.run(run())
    load = os.getloadavg()[0]
    r["load_average"] = load
    table = Table(title=f"research server over MCP stdio ({os.cpu_count()} CPU cores, load average {load:.1f})")
    for col in ("figure", "measured", "target"):
        table.add_column(col)
    w = r["web"]
    table.add_row("quick research, 5 sub-queries, provider 300 ms", f"{w['parallel_ms']:.0f} ms "
                  f"({w['parallel_in_flight']:.0f} in flight)", "≤ 800 ms")
    table.add_row("  same, concurrency 1 (serial)", f"{w['serial_ms']:.0f} ms", "(≈ 1500 ms)")
    table.add_row("rate limit 5/s: 15 searches at once reach the provider over",
                  f"{w['rate_span_s']:.2f} s", "≥ 2 s (5 burst + 10 at 5/s)")
    table.add_row("cache-hit research, p50 of 20 (server-side)",
                  f"{w['cache_hit_p50_ms']:.1f} ms ({w['cache_hit_server_ms']:.1f} ms)", "≤ 5 ms")
    if "corpus" in r:
        c = r["corpus"]
        table.add_row(f"evidence session in top-3 sources ({c['questions']:.0f} single-hop questions, "
                      f"{c['locomo_docs']:.0f} sessions)", f"{c['top3_pct']:.1f} %", "≥ 90 %")
        table.add_row("  baseline: plain word overlap", f"{c['overlap_top3_pct']:.1f} %", "(≈ 80 %)")
        table.add_row("  research latency p50 / p95", f"{c['research_p50_ms']:.0f} / {c['research_p95_ms']:.0f} ms", "")
        table.add_row(f"corpus_search at {c['chunks']:.0f} chunks, p50 / p95",
                      f"{c['search_p50_ms']:.1f} / {c['search_p95_ms']:.1f} ms", "p95 ≤ 20 ms")
        table.add_row("  inside the server (embed query + search)",
                      f"{c['search_server_p50_ms']:.1f} / {c['search_server_p95_ms']:.1f} ms", "")
    elif not a.web_only:
        table.add_row("source quality", f"skipped: no LoCoMo data at {a.corpus_locomo}", "")
    Console().print(table)
    save(r, a.json)


if __name__ == "__main__":
    main()
