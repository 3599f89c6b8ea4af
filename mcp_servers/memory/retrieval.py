"""Ranking of memories for a query: hybrid dense + BM25, re-ranked with the conversation's shape.

Conversation memories are short turns whose meaning often sits next door ("Where did you move
from?" / "Sweden, four years ago."), so the ranking uses more than the words of one turn:

- index time: each memory is embedded with its date (`embed_text`) and BM25-indexed with its
  date and the previous turn of its session (`index_text`);
- query time (`search`): one store round trip (dense and BM25 candidates), min-max score fusion
  with BM25 weighted above MiniLM (exact names and nouns beat paraphrase on chat turns), then
  cheap re-ranking on the payload alone: a turn inherits part of its neighbours' score, turns
  spoken by a person the query names and turns from the time span it names get a bonus, and a
  session's best score lifts its other turns;
- connected recall (`expand`): the names the first hits mention (`entities`, extracted at write
  time) are followed through the keyword index to the memories that share them, so the second
  fact of a question that joins two is found through the first;
- time: the spans a memory mentions, resolved against when it was said (`dates`), count for the
  span a query names, and memories that mention a time rank higher for "when" questions.

Every step is measured on LoCoMo by `bench/locomo.py` (`--ablation` prints what each one adds).
Only the store contract is used, so this runs unchanged on Qdrant Edge and Qdrant server.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from mcp_servers.core.embeddings import Embedder
from mcp_servers.core.ranking import minmax_fusion
from mcp_servers.core.store import DenseQuery, Hit, SparseQuery, VectorStore, Where
from mcp_servers.core.store.aio import off_loop

from .entities import entities

# A name on this few candidates is followed however few the candidates are.
HOP_FEW = 3

# How many earlier contents of the same session the server passes to `index_text`.
CONTEXT_TURNS = 1

# The MiniLM cosine an unrelated memory reaches one time in a hundred (the 99th percentile of
# LoCoMo questions against other conversations' turns: bench/relevance_floor.py). A result above
# it, or one sharing a word with the query, is `relevant`; the others are the nearest of nothing.
MEANING_FLOOR = 0.41


@dataclass(frozen=True)
class Tuning:
    """Weights of the ranking steps; 0 turns a step off.

    Fused scores run from 0 to dense + sparse (each list rescaled to 0..1), and the bonuses
    below are on that scale. Chosen on LoCoMo dev, where each sits on a broad plateau.
    """

    depth: int = 100  # candidates per list, before re-ranking
    dense: float = 0.5  # weight of the MiniLM list
    sparse: float = 1.0  # weight of the BM25 list
    neighbour: float = 0.5  # share of the best adjacent turn's score a turn inherits
    speaker: float = 1.0  # bonus when the turn's speaker ("Name: ...") is named in the query
    temporal: float = 0.4  # bonus when the turn occurred in the span the query names
    session: float = 0.4  # share of its session's best score a turn inherits
    when: float = 0.4  # bonus for a memory that mentions a time, when the query asks "when"
    hop: float = 0.2  # share of a first hit's score passed to memories sharing one of its names
    hop_from: int = 5  # how many first hits are followed
    hop_rare: float = 0.1  # a name on more than this share of the candidates is too common to follow
    hop_depth: int = 50  # memories fetched through the names


TUNING = Tuning()


def embed_text(content: str, occurred_at: datetime | None) -> str:
    """The text embedded (dense vector) for a memory: its date, then its content."""
    return f"[{occurred_at:%d %B %Y}] {content}" if occurred_at is not None else content


def index_text(content: str, occurred_at: datetime | None, context: Sequence[str]) -> str:
    """The text BM25-indexed for a memory: `embed_text`, then the turn(s) before it in its session.

    The previous turn is often the question a short answer replies to ("Where did you move
    from?" / "Sweden."). Embedding it too gains nothing measurable over BM25 alone (LoCoMo dev:
    73.2 vs 72.8 % all-evidence@10) and doubles the embedding cost of every add, so it is only here.
    """
    previous = list(context)[-CONTEXT_TURNS:] if CONTEXT_TURNS else []
    text = embed_text(content, occurred_at)
    return f"{text} (after: {' / '.join(previous)})" if previous else text


async def search(
    store: VectorStore,
    embedder: Embedder,
    query: str,
    where: Where,
    limit: int,
    offset: int = 0,
    tuning: Tuning = TUNING,
    relevant: set[str] | None = None,
) -> list[Hit]:
    """Ranked memories for `query` under `where`, best first, `limit` from `offset`; the ids that
    match at all (see `matching`) are added to `relevant` when it is given."""
    vector = (await embedder.aembed([query]))[0]
    depth = max(tuning.depth, offset + limit)
    dense, sparse = await off_loop(store.search, [DenseQuery(vector), SparseQuery(query)], where, depth)
    if relevant is not None:
        relevant |= matching(dense, sparse)
    hits = minmax_fusion([dense, sparse], [tuning.dense, tuning.sparse])
    scores = rerank(hits, query, tuning)
    by_id = {h.id: h for h in hits}
    if tuning.hop:
        for h in await expand(store, hits, scores, query, where, tuning):
            by_id.setdefault(h.id, h)
    order = sorted(scores, key=scores.__getitem__, reverse=True)[offset : offset + limit]
    return [replace(by_id[i], score=scores[i]) for i in order]


async def expand(store: VectorStore, hits: Sequence[Hit], scores: dict[str, float], query: str, where: Where,
                 tuning: Tuning = TUNING) -> list[Hit]:
    """Follow the rare names of the first hits to the memories that share them (one keyword-filtered
    scroll); each gains `hop` times the best score of a first hit it shares a name with. Updates
    `scores` in place and returns the memories that were not candidates yet."""
    first = sorted(scores, key=scores.__getitem__, reverse=True)[: tuning.hop_from]
    by_id = {h.id: h for h in hits}
    named = set(entities(query))
    common: dict[str, int] = {}
    for h in hits:
        for e in h.payload.get("entities") or ():
            common[e] = common.get(e, 0) + 1
    links: dict[str, float] = {}
    for i in first:
        for e in by_id[i].payload.get("entities") or ():
            if e not in named and common.get(e, 0) <= max(tuning.hop_rare * len(hits), HOP_FEW):
                links[e] = max(links.get(e, 0.0), scores[i])
    if not links:
        return []
    linked = where.model_copy(deep=True)
    linked.any_of["entities"] = sorted(links)
    found, _ = await off_loop(store.scroll, linked, tuning.hop_depth)
    new = []
    for h in found:
        if h.id in first:
            continue
        if h.id not in scores:
            scores[h.id] = 0.0
            new.append(h)
        scores[h.id] += tuning.hop * max(links.get(e, 0.0) for e in h.payload.get("entities") or ())
    return new


def matching(dense: Sequence[Hit], sparse: Sequence[Hit]) -> set[str]:
    """Candidates with evidence of a match: a word shared with the query (any BM25 hit: the
    tokenizer drops stop words and stems) or a meaning closer than unrelated text comes."""
    return {h.id for h in sparse if h.score > 0} | {h.id for h in dense if h.score > MEANING_FLOOR}


def rerank(hits: Sequence[Hit], query: str, tuning: Tuning = TUNING) -> dict[str, float]:
    """New scores for fused candidates, from their payloads (session, seq, time, speaker)."""
    scores = {h.id: h.score for h in hits}
    if tuning.neighbour:
        at = {(_session(h), int(h.payload["seq"])): h.id for h in hits
              if _session(h) and isinstance(h.payload.get("seq"), int | float)}
        inherited = {}
        for (session, seq), i in at.items():
            near = [scores[at[k]] for k in ((session, seq - 1), (session, seq + 1)) if k in at]
            inherited[i] = tuning.neighbour * max(near, default=0.0)
        for i, bonus in inherited.items():
            scores[i] += bonus
    if tuning.speaker:
        words = set(re.findall(r"\w+", query.lower()))
        for h in hits:
            name = _speaker(h.payload.get("content", ""))
            if name and set(name.split()) <= words:
                scores[h.id] += tuning.speaker
    if tuning.temporal and (span := query_span(query)):
        for h in hits:
            ts = h.payload.get("occurred_ts")
            told = isinstance(ts, int | float) and span[0] <= ts < span[1]
            if told or any(a < span[1] and span[0] < b for a, b in h.payload.get("mentions") or ()):
                scores[h.id] += tuning.temporal
    if tuning.when and _WHEN.search(query):
        for h in hits:
            if h.payload.get("mentions"):
                scores[h.id] += tuning.when
    if tuning.session:
        best: dict[tuple[Any, ...], float] = {}
        for h in hits:
            if key := _session(h):
                best[key] = max(best.get(key, 0.0), scores[h.id])
        for h in hits:
            if key := _session(h):
                scores[h.id] += tuning.session * best[key]
    return scores


def _session(hit: Hit) -> tuple[Any, ...] | None:
    """Which conversation a memory belongs to (seq counts within scope, user and session)."""
    p = hit.payload
    return (p.get("scope"), p.get("user_id"), p["session_id"]) if p.get("session_id") else None


_SPEAKER = re.compile(r"\s*([^\W\d_][\w .'-]{0,39}):\s")


def _speaker(content: str) -> str | None:
    """'Caroline' in 'Caroline: I went ...' (lower case), the way chat turns are stored."""
    m = _SPEAKER.match(content)
    return m.group(1).strip().lower() if m else None


_WHEN = re.compile(r"\b(?:when|how long ago|what (?:year|month|day|date|time))\b", re.IGNORECASE)
_MONTHS = "january february march april may june july august september october november december".split()
_MONTH = "|".join(_MONTHS + [m[:3] for m in _MONTHS if m != "may"] + ["sept"])
_DATE = re.compile(
    rf"\b(?:(?P<d1>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?)?(?P<month>{_MONTH})\.?"
    rf"(?:\s+(?P<d2>\d{{1,2}})(?:st|nd|rd|th)?\b)?,?\s*(?P<y1>(?:19|20)\d\d)\b"
    rf"|\b(?P<y2>(?:19|20)\d\d)\b",
    re.IGNORECASE,
)
SLACK = 86_400.0  # a day either side: "on 9 November" may be told the evening after


def query_span(query: str) -> tuple[float, float] | None:
    """The first day, month or year the query names with its year ("on 9 November, 2022",
    "in June 2022", "in 2023"), as UTC epoch seconds [start, end) widened by `SLACK`."""
    m = _DATE.search(query)
    if m is None:
        return None
    if m.group("month") is None:
        y = int(m.group("y2"))
        start, end = datetime(y, 1, 1, tzinfo=UTC), datetime(y + 1, 1, 1, tzinfo=UTC)
    else:
        y = int(m.group("y1"))
        month = next(n for n, name in enumerate(_MONTHS, 1) if name.startswith(m.group("month").lower()[:3]))
        days = calendar.monthrange(y, month)[1]
        day = int(m.group("d1") or m.group("d2") or 0)
        if 1 <= day <= days:
            start = datetime(y, month, day, tzinfo=UTC)
            return start.timestamp() - SLACK, start.timestamp() + 2 * SLACK
        start = datetime(y, month, 1, tzinfo=UTC)
        end = datetime(y + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return start.timestamp() - SLACK, end.timestamp() + SLACK
