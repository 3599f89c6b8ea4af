"""mem0's own `Memory` on our store, on Qdrant Edge and on qdrant-client alike.

No LLM and no network: memories are added with `infer=False`, embedded by the bundled MiniLM.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mcp_servers.core.settings import Settings
from mcp_servers.core.store import Where
from mcp_servers.memory.mem0_store import AlphaAvatarMemory, AlphaAvatarVectorStore, mem0_memory, to_where
from tests.test_store_contract import BACKENDS, backend, wire  # noqa: F401  (the stand-in's fixture)

BEES = "I keep bees on the roof of my flat in Lyon"
CAT = "My cat is called Zephyrine"
COFFEE = "I drink cold brew coffee every morning"
HENS = "I keep hens in the garden behind my house"


@pytest.fixture(params=BACKENDS)
def memory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AlphaAvatarMemory]:
    # Edge through `open_store`, as in production; the others through the contract tests' openers
    url = request.getfixturevalue("wire") if request.param == "qdrant-wire" else None
    opener = None if request.param == "edge" else backend(request.param, tmp_path, url)
    m = mem0_memory(Settings(home=tmp_path, llm_model=None, QDRANT_URL=None), opener=opener)
    if request.param == "edge":
        assert m.vector_store.list_cols() == ["mem0"] and (tmp_path / "mem0" / "mem0" / "shard").is_dir()
    yield m
    m.close()


def _ids(results: dict) -> list[str]:
    return [r["id"] for r in results["results"]]


def test_mem0_memory_runs_on_our_store(memory: AlphaAvatarMemory) -> None:
    bees = _ids(memory.add(BEES, user_id="alice", infer=False))[0]
    cat, coffee = _ids(memory.add(
        [{"role": "user", "content": CAT}, {"role": "user", "content": COFFEE}], user_id="alice",
        metadata={"topic": "home"}, infer=False,
    ))
    hens = _ids(memory.add(HENS, user_id="bob", infer=False))[0]

    found = memory.search("who lives on my roof? bees", filters={"user_id": "alice"})["results"]
    assert found[0]["id"] == bees and {r["user_id"] for r in found} == {"alice"}
    for query in ("bees on the roof", "Zephyrine", "cold brew coffee"):  # B never sees A's memories
        assert set(_ids(memory.search(query, filters={"user_id": "bob"}))) <= {hens}
    assert memory.search("hens in the garden", filters={"user_id": "bob"})["results"][0]["id"] == hens

    # BM25 on the store's sparse vectors: an exact rare word, scoped to its user
    assert [h.id for h in memory.vector_store.keyword_search("Zephyrine", filters={"user_id": "alice"})] == [cat]
    assert memory.vector_store.keyword_search("Zephyrine", filters={"user_id": "bob"}) == []
    top = memory.search("Zephyrine", filters={"user_id": "alice"}, explain=True)["results"][0]
    assert top["id"] == cat and top["score_details"]["bm25_score"] > 0

    # metadata filters, with mem0's operators: search rewrites them, get_all passes them on as given
    home = {"user_id": "alice", "topic": "home"}
    either = {"user_id": "alice", "OR": [{"topic": "home"}, {"topic": "garden"}]}
    for filters in (home, either):
        assert set(_ids(memory.search("my cat and my morning coffee", filters=filters, threshold=0.0))) == {cat, coffee}
        assert set(_ids(memory.get_all(filters=filters))) == {cat, coffee}
    with pytest.raises(ValueError, match="supports"):
        memory.search("cat", filters={"user_id": "alice", "topic": {"contains": "ho"}})

    got = memory.get(cat)
    assert got is not None and got["memory"] == CAT and got["user_id"] == "alice" and got["metadata"]["topic"] == "home"
    assert memory.get("00000000-0000-4000-8000-000000000000") is None
    assert {r["memory"] for r in memory.get_all(filters={"user_id": "alice"})["results"]} == {BEES, CAT, COFFEE}

    memory.update(bees, text="I keep bees on the roof of my house in Lyon")
    assert memory.get(bees)["memory"].endswith("my house in Lyon")
    assert [h.id for h in memory.vector_store.keyword_search("house", filters={"user_id": "alice"})] == [bees]
    memory.delete(coffee)
    assert memory.get(coffee) is None
    assert [e["event"] for e in memory.history(bees)] == ["ADD", "UPDATE"]
    assert [e["event"] for e in memory.history(coffee)] == ["ADD", "DELETE"]

    with pytest.raises(Exception, match="no LLM is configured"):
        memory.add("I moved to Paris", user_id="alice")  # infer=True needs an LLM

    # mem0 opens its entity collection through the same config copy and factory
    entities: AlphaAvatarVectorStore = memory.entity_store
    assert entities.collection_name == "mem0_entities"
    vec = memory.embedding_model.embed("Zephyrine", "add")
    entities.insert([vec], [{"data": "Zephyrine", "linked_memory_ids": [cat], "user_id": "alice"}])
    [[match]] = entities.search_batch(["Zephyrine"], [vec], 1, {"user_id": "alice"})
    assert match.payload["linked_memory_ids"] == [cat] and match.score > 0.99
    assert entities.search("Zephyrine", vec, 1, {"user_id": "bob"}) == []

    memory.delete_all(user_id="alice")
    assert memory.get_all(filters={"user_id": "alice"})["results"] == []
    assert _ids(memory.get_all(filters={"user_id": "bob"})) == [hens]

    memory.reset()
    assert memory.get_all(filters={"user_id": "bob"})["results"] == []
    assert memory.entity_store.col_info()["points_count"] == 0  # reopened after reset


@pytest.mark.parametrize("kind", BACKENDS)
def test_collections_batch_search_reset_and_drop(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    opener = backend(kind, tmp_path, request.getfixturevalue("wire") if kind == "qdrant-wire" else None)
    one, two = AlphaAvatarVectorStore("one", 4, opener), AlphaAvatarVectorStore("two", 4, opener)
    one.insert([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]], [{"data": t, "user_id": "u"} for t in ("alpha", "beta", "gamma")])
    first, second = one.search_batch(["x", "y"], [[0, 1, 0, 0], [0, 0, 1, 0]], top_k=1)
    assert (first[0].payload["data"], second[0].payload["data"]) == ("beta", "gamma")
    [page] = one.list(filters={"user_id": "u"}, top_k=2)
    assert len(page) == 2
    assert one.col_info() == {"name": "one", "points_count": 3, "dim": 4}
    one.reset()
    assert one.col_info()["points_count"] == 0
    assert "one" in one.list_cols()
    two.delete_col()
    assert one.list_cols() == ["one"]
    with pytest.raises(RuntimeError, match="deleted"):
        two.col_info()
    with pytest.raises(ValueError, match="cosine"):
        two.create_col("two", 4, "euclid")
    one.close()


def test_mem0_filters_become_where_or_are_refused() -> None:
    assert to_where({"user_id": "a", "agent_id": "b", "run_id": "*"}) == Where(equals={"user_id": "a", "agent_id": "b"})
    assert to_where({"user_id": "a", "n": {"gte": 1, "lte": 5}, "x": 2.5}) == Where(
        equals={"user_id": "a"}, ranges={"n": (1, 5), "x": (2.5, 2.5)}
    )
    assert to_where({"$or": [{"topic": "x"}, {"topic": {"eq": "y"}}], "$not": [{"role": "assistant"}]}) == Where(
        any_of={"topic": ["x", "y"]}, not_equals={"role": "assistant"}
    )
    assert to_where({"AND": [{"user_id": "a"}, {"tag": {"in": ["p", "q"]}}, {"n": {"nin": [3]}}]}) == Where(
        equals={"user_id": "a"}, any_of={"tag": ["p", "q"]}, not_equals={"n": 3}
    )
    assert to_where({}) is None and to_where({"user_id": "*"}) is None
    for refused in (
        {"topic": {"contains": "x"}},
        {"n": {"gt": 1}},
        {"flag": True},
        {"OR": [{"a": "x"}, {"b": "y"}]},
        {"tag": {"nin": ["p", "q"]}},
        {"created_at": {"gte": "2024-01-01"}},
        {"user_id": "a", "AND": [{"user_id": "b"}]},
        {"user_id": None},
    ):
        with pytest.raises(ValueError):
            to_where(refused)
