"""Where a memory search stops matching: the dense similarity unrelated memories reach.

memory_search marks a result `relevant` when it shares a word with the query (BM25, stop words
removed, stemmed) or when its MiniLM cosine to the query is above what an unrelated memory reaches
(`retrieval.MEANING_FLOOR`). "Unrelated" is measured, not guessed: LoCoMo questions against the turns
of the *other* conversations (different people, different lives), embedded as memories are
(`retrieval.embed_text`: date, then content). The floor is that null distribution's 99th
percentile: an unrelated memory clears it one time in a hundred. The table also shows how many of
the questions' own evidence turns clear it (a floor that hid them would be too strict).

Usage: .venv/bin/python bench/relevance_floor.py [--data DIR] [--json OUT]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.figures import save  # noqa: E402
from bench.locomo import DEFAULT_DATA, load  # noqa: E402
from mcp_servers.core.embeddings import get_embedder  # noqa: E402
from mcp_servers.core.settings import Settings  # noqa: E402
from mcp_servers.core.store import bm25  # noqa: E402
from mcp_servers.memory import retrieval  # noqa: E402

PERCENTILES = (50.0, 90.0, 95.0, 99.0, 99.9)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    convs = [load(p) for p in sorted(args.data.glob("*.json"))]
    embedder = get_embedder(Settings())
    turns = [embedder.embed([retrieval.embed_text(t.text, t.when) for t in c.turns]) for c in convs]
    questions = [embedder.embed([q.text for q in c.questions]) for c in convs]
    null = np.concatenate([(questions[i] @ turns[j].T).ravel()
                           for i in range(len(convs)) for j in range(len(convs)) if i != j])
    evidence, worded = [], []
    for c, q, t in zip(convs, questions, turns, strict=True):
        at = {turn.dia_id: n for n, turn in enumerate(c.turns)}
        terms = [set(bm25.document(retrieval.index_text(turn.text, turn.when, [])).indices) for turn in c.turns]
        for qi, question in enumerate(c.questions):
            asked = set(bm25.query(question.text).indices)
            evidence += [float(q[qi] @ t[at[d]]) for d in question.evidence]
            worded += [bool(asked & terms[at[d]]) for d in question.evidence]
    cuts = {p: float(np.percentile(null, p)) for p in PERCENTILES}
    ev = np.array(evidence)
    print(f"| unrelated pairs | evidence pairs | {' | '.join(f'null p{p:g}' for p in PERCENTILES)} |")
    print("|---|---|" + "---|" * len(PERCENTILES))
    print(f"| {null.size:,} | {ev.size:,} | {' | '.join(f'{v:.3f}' for v in cuts.values())} |")
    print("\n| floor | unrelated above | evidence above |\n|---|---|---|")
    for p, v in cuts.items():
        print(f"| p{p:g} = {v:.3f} | {100 * float((null > v).mean()):.2f} % | {100 * float((ev > v).mean()):.1f} % |")
    now = retrieval.MEANING_FLOOR
    marked = float(((ev > now) | np.array(worded)).mean())
    print(f"\nretrieval.MEANING_FLOOR = {now}: unrelated above {100 * float((null > now).mean()):.2f} %, "
          f"evidence above {100 * float((ev > now).mean()):.1f} %; evidence sharing a word with the question "
          f"{100 * float(np.mean(worded)):.1f} %; evidence marked relevant (a word or the meaning) {100 * marked:.1f} %")
    save({"null_percentiles": cuts, "evidence_above_p99": float((ev > cuts[99.0]).mean()), "pairs": int(null.size),
          "floor": now, "evidence_marked_relevant": marked}, args.json)


if __name__ == "__main__":
    main()
