"""Retrieval quality of the memory server, through a real MCP client over stdio.

Each ranking step of `mcp_servers.memory.retrieval` gets a small conversation that only that
step ranks right (a short answer after the question it replies to, the same words said by two
people, the same event on two dates), plus one LoCoMo dev conversation end to end against the
dense MiniLM baseline (`-m slow`: a benchmark in small; the full figures are `bench/locomo.py`).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from mcp import ClientSession

from mcp_servers.core.ranking import minmax_fusion
from mcp_servers.core.store import Hit
from mcp_servers.memory.retrieval import query_span
from tests.support import DATASETS, ROOT, call, server_env, stdio_session

USER = "caroline-and-mel"


def turn(session: str, when: str, text: str) -> dict[str, Any]:
    return {"content": text, "user_id": USER, "session_id": session, "occurred_at": when, "infer": False}


CONVERSATION = [
    # s1: the answer to "where did she live before" is a short reply to a question
    turn("s1", "2023-05-08T13:56:00", "Melanie: Hey Caroline! How was the weekend?"),
    turn("s1", "2023-05-08T13:56:00", "Caroline: Lovely, I live for quiet weekends like this one."),
    turn("s1", "2023-05-08T13:56:00", "Melanie: Where did you live before you came here?"),
    turn("s1", "2023-05-08T13:56:00", "Caroline: Sweden, about four years ago. I still miss the lakes."),
    turn("s1", "2023-05-08T13:56:00", "Melanie: Before kids I would live at the pottery studio, ha."),
    # s2 and s3: the same words from two speakers; the same event on two dates
    turn("s2", "2023-06-15T10:00:00", "Melanie: Caroline, the new painting looks amazing."),
    turn("s2", "2023-06-15T10:00:00", "Caroline: Melanie, the new painting looks amazing."),
    turn("s2", "2023-06-15T10:00:00", "Melanie: I baked a rye loaf with the kids this morning."),
    turn("s3", "2023-03-02T18:30:00", "Melanie: I baked a sourdough loaf with the kids this morning."),
    turn("s3", "2023-03-02T18:30:00", "Caroline: The support group meets on Fridays now."),
]


async def contents(session: ClientSession, query: str, user: str = USER, **args: Any) -> list[str]:
    res = await call(session, "memory_search", {"query": query, "user_id": user, **args})
    assert not res.is_error, res.text
    return [h["content"] for h in res.data["results"]]


async def test_each_ranking_step_over_stdio(tmp_path: Path) -> None:
    async with stdio_session("memory", server_env(tmp_path)) as s:
        res = await call(s, "memory_add_batch", {"items": CONVERSATION})
        assert not res.is_error, res.text

        # the previous turn (BM25 context) and neighbour propagation find a short answer
        hits = await contents(s, "Where did Caroline live before?", limit=2)
        assert "Caroline: Sweden, about four years ago. I still miss the lakes." in hits

        # the same words from two people: the one the query names comes first
        hits = await contents(s, "What did Caroline say about the new painting?", limit=2)
        assert hits[0] == "Caroline: Melanie, the new painting looks amazing."
        hits = await contents(s, "What did Melanie say about the new painting?", limit=2)
        assert hits[0] == "Melanie: Caroline, the new painting looks amazing."

        # the same event on two dates: the one in the span the query names comes first
        hits = await contents(s, "What loaf did Melanie bake on 2 March, 2023?", limit=2)
        assert hits[0] == "Melanie: I baked a sourdough loaf with the kids this morning."
        hits = await contents(s, "What loaf did Melanie bake in June 2023?", limit=2)
        assert hits[0] == "Melanie: I baked a rye loaf with the kids this morning."

        # pages continue the same ranking
        query = {"query": "Melanie kids weekend", "user_id": USER}
        whole = await contents(s, query["query"], limit=6)
        first = await call(s, "memory_search", {**query, "limit": 3})
        second = await call(s, "memory_search", {**query, "limit": 3, "cursor": first.data["next_cursor"]})
        assert [h["content"] for h in first.data["results"] + second.data["results"]] == whole

        # memories with no session and no speaker are ranked too
        loose = {"content": "Remember: the gate code is 4512.", "user_id": "loose", "infer": False}
        res = await call(s, "memory_add", loose)
        assert not res.is_error, res.text
        assert await contents(s, "gate code", user="loose") == [loose["content"]]


@pytest.mark.parametrize(
    ("query", "day", "days"),
    [
        ("What did Gina find on 1 February, 2023?", "2023-02-01", 1),
        ("What did Nate play on October 9, 2022?", "2022-10-09", 1),
        ("What book did Tim read on 8th December, 2023?", "2023-12-08", 1),
        ("How many people came to the party in June 2022?", "2022-06-01", 30),
        ("What instrument is Tim learning in Dec 2023?", "2023-12-01", 31),
        ("What charity event did John organize in 2024?", "2024-01-01", 366),
    ],
)
def test_query_span(query: str, day: str, days: int) -> None:
    span = query_span(query)
    assert span is not None
    start = datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()
    assert span[0] < start < span[1]
    assert (span[1] - span[0]) / 86400 == pytest.approx(days + 2)  # a day of slack either side


@pytest.mark.parametrize("query", ["What may I bring?", "When did Caroline go to the support group?", "in June?"])
def test_no_span_without_a_year(query: str) -> None:
    assert query_span(query) is None


def test_minmax_fusion_keeps_score_gaps() -> None:
    dense = [Hit("a", 0.90), Hit("c", 0.89), Hit("b", 0.50)]
    sparse = [Hit("c", 12.0), Hit("a", 1.0), Hit("b", 0.5)]
    # ranks alone tie a and c (1st + 2nd each); the scores say BM25 is far surer of c
    fused = minmax_fusion([dense, sparse], [1.0, 1.0])
    assert [h.id for h in fused] == ["c", "a", "b"]
    assert [h.score for h in fused] == pytest.approx([0.975 + 1, 1 + 0.5 / 11.5, 0])
    assert [h.score for h in minmax_fusion([dense, sparse], [0.5, 1.0])] == pytest.approx([0.4875 + 1, 0.5 + 0.5 / 11.5, 0])
    assert minmax_fusion([[Hit("x", 3.0)], []])[0].score == 1.0


@pytest.mark.slow  # a benchmark (bench/locomo.py in small); each ranking step is checked above in the default run
async def test_locomo_conversation_beats_dense_baseline() -> None:
    data = DATASETS / "locomo-dev" / "30.json"
    if not data.exists():
        pytest.skip(f"LoCoMo dev split not found at {data.parent}")
    sys.path.insert(0, str(ROOT / "bench"))
    import locomo

    from mcp_servers.core.embeddings import get_embedder
    from mcp_servers.core.settings import Settings

    convs = [locomo.load(Path(data))]
    dense = locomo.score(convs, locomo.dense_baseline(convs, get_embedder(Settings())))["all"]["all@10"]
    ranked, _, _ = await locomo.through_mcp(convs)
    ours = locomo.score(convs, ranked)["all"]["all@10"]
    # measured: 72.8 vs 44.4 on this conversation; the issue asks +15 on held-back ones
    assert ours >= dense + 15, (ours, dense)
