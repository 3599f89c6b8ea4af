"""LoCoMo evidence recall of memory_search, against a pure dense MiniLM baseline in the same run.

    python bench/locomo.py [--data DIR] [--json OUT] [--max-convs N] [--ablation] [--model DIR --dim N]

Every turn of every conversation is stored verbatim as one memory ("speaker: text [image:
caption]", its session, occurred_at = the session's date) through the real memory server over
MCP stdio (`memory_add_batch`), one user per conversation; every question of categories 1-4
is asked with `memory_search(query, user_id, limit=20)`. Reported per category: evidence
recall@1/5/10/20 (share of a question's evidence turns in the top k) and all-evidence@10 (all
of them in the top 10), with the same figures for the baseline: MiniLM cosine between the
question and the verbatim turn text, exact, no date, no fusion.

`--model` puts another local sentence-transformers folder (of `--dim` dimensions) in MiniLM's place, in
the server and in the baseline alike: what a larger embedder would change.

`--ablation` also rebuilds the index in-process on the core store with each ranking step of
`mcp_servers.memory.retrieval` added one at a time, and prints all-evidence@10 per step.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.figures import save  # noqa: E402
from mcp_servers.core.embeddings import Embedder, get_embedder  # noqa: E402
from mcp_servers.core.ranking import rrf  # noqa: E402
from mcp_servers.core.settings import Settings  # noqa: E402
from mcp_servers.core.store import CollectionSpec, DenseQuery, Hit, Item, SparseQuery, VectorStore, Where, open_store  # noqa: E402
from mcp_servers.core.store.aio import off_loop  # noqa: E402
from mcp_servers.memory import retrieval  # noqa: E402

EXE = str(Path(sys.executable).with_name("alphaavatar"))
DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "locomo-dev"
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
KS = (1, 5, 10, 20)


@dataclass
class Turn:
    dia_id: str
    session: int
    seq: int
    when: datetime
    text: str


@dataclass
class Question:
    text: str
    category: int
    evidence: list[str]


@dataclass
class Conversation:
    user: str
    turns: list[Turn]
    questions: list[Question] = field(default_factory=list)


def load(path: Path) -> Conversation:
    """One LoCoMo file: its turns in session order and its answerable (1-4) questions."""
    d = json.loads(path.read_text())
    conv = d.get("conversation", d)
    sessions = sorted(int(m.group(1)) for k, v in conv.items() if (m := re.fullmatch(r"session_(\d+)", k)) and isinstance(v, list))
    turns = []
    for n in sessions:
        when = datetime.strptime(conv[f"session_{n}_date_time"].strip(), "%I:%M %p on %d %B, %Y").replace(tzinfo=UTC)
        for seq, t in enumerate(conv[f"session_{n}"]):
            text = f"{t['speaker']}: {t.get('text', '')}"
            if t.get("blip_caption"):
                text += f" [image: {t['blip_caption']}]"
            turns.append(Turn(t["dia_id"], n, seq, when, text))
    ids = {t.dia_id for t in turns}
    out = Conversation(f"locomo-{path.stem}", turns)
    for qa in d.get("qa", []):
        evidence = _evidence(qa.get("evidence", []), ids)
        if qa.get("category") in CATEGORIES and evidence:
            out.questions.append(Question(qa["question"], qa["category"], evidence))
    return out


def _evidence(raw: Sequence[Any], ids: set[str]) -> list[str]:
    """Evidence turn ids with LoCoMo's formatting noise repaired ("D8:6; D9:17", "D:11:26", "D30:05")."""
    out: list[str] = []
    for piece in (p for item in raw for p in re.split(r"[;,\s]+", str(item).strip())):
        m = re.fullmatch(r"D:?(\d+):0*(\d+)", piece)
        cand = f"D{m.group(1)}:{m.group(2)}" if m else piece
        if cand in ids and cand not in out:
            out.append(cand)
    return out


def session_id(conv: Conversation, turn: Turn) -> str:
    return f"{conv.user}-s{turn.session}"


# -- scoring ------------------------------------------------------------------------------------


def score(convs: Sequence[Conversation], ranked: dict[tuple[str, int], list[str]]) -> dict[str, dict[str, float]]:
    """Per category (and 'all'): recall@k for KS and all-evidence@10, in percent."""
    rows: dict[str, list[dict[str, float]]] = {}
    for conv in convs:
        for qi, q in enumerate(conv.questions):
            got = ranked[(conv.user, qi)]
            ev = set(q.evidence)
            row = {f"R@{k}": len(ev & set(got[:k])) / len(ev) for k in KS}
            row["all@10"] = float(ev <= set(got[:10]))
            for key in (CATEGORIES[q.category], "all"):
                rows.setdefault(key, []).append(row)
    return {
        key: {"n": len(rs), **{m: 100 * statistics.mean(r[m] for r in rs) for m in rs[0]}}
        for key, rs in rows.items()
    }


def dense_baseline(convs: Sequence[Conversation], embedder: Embedder) -> dict[tuple[str, int], list[str]]:
    """MiniLM cosine between question and verbatim turn, exact, per conversation."""
    ranked = {}
    for conv in convs:
        docs = embedder.embed([t.text for t in conv.turns])
        queries = embedder.embed([q.text for q in conv.questions])
        for qi, sims in enumerate(queries @ docs.T):
            ranked[(conv.user, qi)] = [conv.turns[j].dia_id for j in np.argsort(-sims)[: max(KS)]]
    return ranked


# -- through the memory server over MCP stdio ----------------------------------------------------


async def through_mcp(convs: Sequence[Conversation], model: dict[str, str] | None = None
                      ) -> tuple[dict[tuple[str, int], list[str]], list[float], float]:
    """Store every turn with memory_add_batch, ask every question with memory_search.

    Returns the ranked dia_ids per question, search latencies (ms, client side) and add rate (items/s);
    `model` is the server's embedder settings when another than MiniLM is measured.
    """
    ranked: dict[tuple[str, int], list[str]] = {}
    latencies: list[float] = []
    with tempfile.TemporaryDirectory() as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ALPHAAVATAR_", "OPENAI_", "QDRANT_"))}
        env.update({"ALPHAAVATAR_HOME": home, "MEM0_TELEMETRY": "False", "HF_HUB_OFFLINE": "1", **(model or {})})
        params = StdioServerParameters(command=EXE, args=["serve", "memory", "--transport", "stdio"], env=env)
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            added, t0 = 0, time.perf_counter()
            for conv in convs:
                items = [
                    {"content": t.text, "user_id": conv.user, "session_id": session_id(conv, t),
                     "occurred_at": t.when.isoformat(), "metadata": {"dia_id": t.dia_id}, "infer": False}
                    for t in conv.turns
                ]
                for i in range(0, len(items), 500):
                    res = await session.call_tool("memory_add_batch", {"items": items[i : i + 500]})
                    if res.is_error:
                        raise RuntimeError(f"memory_add_batch failed: {res.content}")
                    added += len(items[i : i + 500])
            rate = added / (time.perf_counter() - t0)
            for conv in convs:
                for qi, q in enumerate(conv.questions):
                    t1 = time.perf_counter()
                    res = await session.call_tool("memory_search", {"query": q.text, "user_id": conv.user, "limit": max(KS)})
                    latencies.append(1000 * (time.perf_counter() - t1))
                    if res.is_error or res.structured_content is None:
                        raise RuntimeError(f"memory_search failed: {res.content}")
                    ranked[(conv.user, qi)] = [h["metadata"]["dia_id"] for h in res.structured_content["results"]]
    return ranked, latencies, rate


# -- in-process ablation ------------------------------------------------------------------------


class CachedEmbedder(Embedder):
    """The real embedder, remembering texts already embedded (the ablation asks each question often)."""

    def __init__(self, inner: Embedder):
        self.inner, self.dim, self.name = inner, inner.dim, inner.name
        self._cache: dict[str, np.ndarray] = {}

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        todo = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if todo:
            self._cache.update(zip(todo, self.inner.embed(todo), strict=True))
        return np.stack([self._cache[t] for t in texts]) if texts else self.inner.embed([])


Ranker = Callable[[VectorStore, Embedder, str, Where], Awaitable[list[Hit]]]


def tuned(tuning: retrieval.Tuning) -> Ranker:
    async def rank(store: VectorStore, embedder: Embedder, query: str, where: Where) -> list[Hit]:
        return await retrieval.search(store, embedder, query, where, 10, tuning=tuning)

    return rank


async def rrf_ranker(store: VectorStore, embedder: Embedder, query: str, where: Where) -> list[Hit]:
    """Plain hybrid search: reciprocal-rank fusion of the dense and BM25 lists, equal weights."""
    vector = (await embedder.aembed([query]))[0]
    return rrf(await off_loop(store.search, [DenseQuery(vector), SparseQuery(query)], where, retrieval.TUNING.depth))[:10]


async def ablation(convs: Sequence[Conversation], embedder: Embedder) -> list[tuple[str, dict[str, dict[str, float]]]]:
    """all-evidence@10 as the index and the ranking steps are added one at a time."""
    full = retrieval.TUNING
    off = replace(full, neighbour=0, speaker=0, temporal=0, session=0)
    steps: list[tuple[str, str, Ranker]] = [
        ("dense only (store)", "plain", tuned(replace(off, sparse=0))),
        ("BM25 only", "plain", tuned(replace(off, dense=0))),
        ("RRF, equal weights", "plain", rrf_ranker),
        ("RRF, date in the indexed text", "dated", rrf_ranker),
        ("min-max fusion, BM25 above dense, dated", "dated", tuned(off)),
        ("+ previous turn in the BM25 text", "context", tuned(off)),
        ("+ neighbour score propagation", "context", tuned(replace(off, neighbour=full.neighbour))),
        ("+ speaker named in the query", "context", tuned(replace(off, neighbour=full.neighbour, speaker=full.speaker))),
        ("+ time span named in the query", "context", tuned(replace(full, session=0))),
        ("+ session aggregation (= shipped)", "context", tuned(full)),
    ]
    out = []
    for index in ("plain", "dated", "context"):
        with tempfile.TemporaryDirectory() as home:
            store = open_store(Settings(home=Path(home)), "memory", CollectionSpec(
                "memories", embedder.dim, True, ("user_id",), ("session_id",), ("occurred_ts", "seq")))
            try:
                items = []
                for conv in convs:
                    previous: dict[str, list[str]] = {}
                    for t in conv.turns:
                        sid = session_id(conv, t)
                        ctx = previous.setdefault(sid, [])
                        when = None if index == "plain" else t.when
                        dense = retrieval.embed_text(t.text, when)
                        sparse = retrieval.index_text(t.text, when, ctx if index == "context" else [])
                        ctx.append(t.text)
                        payload = {"content": t.text, "scope": "user", "user_id": conv.user, "session_id": sid,
                                   "seq": t.seq, "occurred_ts": t.when.timestamp(), "dia_id": t.dia_id}
                        items.append((payload, dense, sparse))
                vectors = embedder.embed([dense for _, dense, _ in items])
                await off_loop(store.upsert, [Item(str(uuid.uuid4()), p, v, sparse)
                                              for (p, _, sparse), v in zip(items, vectors, strict=True)])
                for name, kind, rank in steps:
                    if kind != index:
                        continue
                    ranked = {}
                    for conv in convs:
                        where = Where(equals={"user_id": conv.user})
                        for qi, q in enumerate(conv.questions):
                            hits = await rank(store, embedder, q.text, where)
                            ranked[(conv.user, qi)] = [h.payload["dia_id"] for h in hits]
                    out.append((name, score(convs, ranked)))
            finally:
                await off_loop(store.close)
    order = [name for name, _, _ in steps]
    return sorted(out, key=lambda kv: order.index(kv[0]))


# -- report -------------------------------------------------------------------------------------


def table(title: str, ours: dict[str, dict[str, float]], dense: dict[str, dict[str, float]]) -> Table:
    t = Table(title=title, caption="each cell: ours / dense baseline")
    metrics = [f"R@{k}" for k in KS] + ["all@10"]
    for col in ["category", "n", *metrics]:
        t.add_column(col, justify="left" if col == "category" else "right")
    for key in [*CATEGORIES.values(), "all"]:
        if key in ours:
            t.add_row(key, str(int(ours[key]["n"])), *(f"{ours[key][m]:.1f} / {dense[key][m]:.1f}" for m in metrics))
    return t


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of LoCoMo conversation files (*.json)")
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--max-convs", type=int, default=0, help="only the first N conversations (0 = all)")
    ap.add_argument("--ablation", action="store_true", help="also measure each ranking step in-process")
    ap.add_argument("--model", type=Path, help="a local sentence-transformers folder to use instead of MiniLM")
    ap.add_argument("--dim", type=int, default=384, help="the dimensions of --model's vectors")
    a = ap.parse_args()
    files = sorted(a.data.glob("*.json"))[: a.max_convs or None]
    if not files:
        print(f"no LoCoMo files in {a.data}", file=sys.stderr)
        return 2
    convs = [load(p) for p in files]
    console = Console(width=150)
    model = {"ALPHAAVATAR_EMBEDDING_MODEL": str(a.model.resolve()), "ALPHAAVATAR_EMBEDDING_DIM": str(a.dim)} if a.model else {}
    embedder = CachedEmbedder(get_embedder(Settings(embedding_model=model.get("ALPHAAVATAR_EMBEDDING_MODEL"),
                                                    embedding_dim=a.dim)))
    dense = score(convs, dense_baseline(convs, embedder))
    ranked, latencies, rate = await through_mcp(convs, model)
    ours = score(convs, ranked)
    n_turns = sum(len(c.turns) for c in convs)
    console.print(table(f"LoCoMo evidence recall (%), {len(convs)} conversations, {n_turns} memories, "
                        f"memory_search over MCP stdio vs dense {embedder.name}", ours, dense))
    gain = ours["all"]["all@10"] - dense["all"]["all@10"]
    p50, p95 = statistics.median(latencies), float(np.percentile(latencies, 95))
    console.print(f"all-evidence@10: ours {ours['all']['all@10']:.1f} %, dense {dense['all']['all@10']:.1f} % "
                  f"({gain:+.1f} pts); memory_search p50 {p50:.1f} ms, p95 {p95:.1f} ms (client side, "
                  f"{len(latencies)} searches); memory_add_batch {rate:.0f} items/s")
    figures: dict[str, Any] = {"conversations": [p.name for p in files], "embedder": embedder.name,
                               "memories": n_turns, "ours": ours, "dense": dense, "gain_all_evidence_at_10": gain, "search_ms": {"p50": p50, "p95": p95},
                               "add_items_per_s": rate}
    if a.ablation:
        steps = await ablation(convs, embedder)
        t = Table(title="Ablation (in-process, core store): all-evidence@10 (%) as each step is added")
        for col in ["step", *CATEGORIES.values(), "all", "vs dense"]:
            t.add_column(col, justify="left" if col == "step" else "right")
        for name, s in steps:
            t.add_row(name, *(f"{s[c]['all@10']:.1f}" for c in CATEGORIES.values()), f"{s['all']['all@10']:.1f}",
                      f"{s['all']['all@10'] - dense['all']['all@10']:+.1f}")
        console.print(t)
        figures["ablation"] = {name: s["all"]["all@10"] for name, s in steps}
    save(figures, a.json)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
