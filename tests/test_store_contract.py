"""One contract, two engines: Qdrant Edge (embedded) and Qdrant server via qdrant-client.

The server implementation runs on qdrant-client's local mode (the same client API), over the
wire against the Qdrant stand-in (`tests.fakes.qdrant_server`: REST, as a real server is reached),
and on a real Qdrant server too when QDRANT_URL is set.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from mcp_servers.core.errors import StoreLocked
from mcp_servers.core.store import CollectionSpec, DenseQuery, Item, SparseQuery, VectorStore, Where
from mcp_servers.core.store.edge import EdgeStore
from mcp_servers.core.store.server import ServerStore
from tests.fakes.qdrant_server import FakeQdrant

SPEC = CollectionSpec("contract", dim=8, tenant_fields=("user_id",), keyword_fields=("kind",), float_fields=("ts",))
BACKENDS = ["edge", "qdrant-local", "qdrant-wire"] + (["qdrant-server"] if os.environ.get("QDRANT_URL") else [])


@pytest.fixture(scope="module")
def wire() -> Iterator[str]:
    """The Qdrant stand-in, one per module: its URL."""
    with FakeQdrant() as q:
        yield q.url


def backend(kind: str, root: Path, url: str | None = None) -> Callable[[CollectionSpec], VectorStore]:
    """Open collections on one of BACKENDS, each with its own client as `open_store` does."""
    from qdrant_client import QdrantClient

    if kind == "edge":
        return lambda spec: EdgeStore(root / spec.name, spec)
    if kind == "qdrant-local":

        def local(spec: CollectionSpec) -> VectorStore:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # local mode says payload indexes are no-ops there
                return ServerStore(QdrantClient(location=":memory:"), spec.name, spec)

        return local
    prefix = f"t{uuid.uuid4().hex[:8]}_"
    return lambda spec: ServerStore(QdrantClient(url=url or os.environ["QDRANT_URL"]), prefix + spec.name, spec)


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    url = request.getfixturevalue("wire") if request.param == "qdrant-wire" else None
    s = backend(request.param, tmp_path, url)(SPEC)
    yield s
    s.close()


def _vec(i: int) -> list[float]:
    v = np.zeros(8, dtype=np.float32)
    v[i % 8] = 1.0
    v[(i + 1) % 8] = 0.3
    return v.tolist()


TEXTS = ["the cat sat on the mat", "bees live on the roof", "paris is in france", "my dog chases balls",
         "tea with milk", "cold brew coffee", "the roof leaks", "alice likes jazz"]


def _fill(store: VectorStore) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in TEXTS]
    store.upsert([
        Item(ids[i], {"text": t, "user_id": "a" if i % 2 == 0 else "b", "kind": "x" if i < 4 else "y", "ts": float(i)},
             _vec(i), t)
        for i, t in enumerate(TEXTS)
    ])
    return ids


def test_upsert_count_retrieve(store: VectorStore) -> None:
    ids = _fill(store)
    assert store.count() == len(TEXTS)
    assert store.count(Where(equals={"user_id": "a"})) == 4
    got = store.retrieve([ids[1]], with_vectors=True)
    assert got[0].payload["text"] == TEXTS[1]
    assert got[0].dense is not None and len(got[0].dense) == 8
    assert store.retrieve([str(uuid.uuid4())]) == []


def test_dense_and_sparse_in_one_call_respect_filters(store: VectorStore) -> None:
    _fill(store)
    dense, sparse = store.search([DenseQuery(_vec(1)), SparseQuery("roof")], Where(equals={"user_id": "b"}), 3)
    assert dense[0].payload["text"] == TEXTS[1]
    assert all(h.payload["user_id"] == "b" for h in dense + sparse)
    assert [h.payload["text"] for h in sparse] == ["bees live on the roof"]
    other = store.search([SparseQuery("roof")], Where(equals={"user_id": "a"}), 3)[0]
    assert [h.payload["text"] for h in other] == ["the roof leaks"]
    assert store.search([SparseQuery("volcano")], None, 3)[0] == []


def test_filters_any_not_ranges_ids(store: VectorStore) -> None:
    ids = _fill(store)
    assert store.count(Where(any_of={"kind": ["x"]}, not_equals={"user_id": "a"})) == 2
    assert store.count(Where(ranges={"ts": (2.0, 5.0)})) == 4
    assert store.count(Where(ranges={"ts": (None, 0.5)})) == 1
    assert store.count(Where(has_ids=ids[:3])) == 3


def test_filters_on_list_fields_and_alternatives(store: VectorStore) -> None:
    heard = [["a", "b"], ["a"], ["b", "c"], ["a", "b", "c"]]
    store.upsert([Item(str(uuid.uuid4()), {"kind": "x" if i < 2 else "y", "heard": h}, _vec(i), None)
                  for i, h in enumerate(heard)])
    assert store.count(Where(all_of={"heard": ["a", "b"]})) == 2
    assert store.count(Where(all_of={"heard": ["b", "c"]}, equals={"kind": "y"})) == 2
    either = [Where(equals={"kind": "x"}, all_of={"heard": ["b"]}), Where(all_of={"heard": ["c"]})]
    assert store.count(Where(either=either)) == 3
    assert store.count(Where(either=either, equals={"kind": "y"})) == 2
    assert store.count(Where(either=[Where(), Where(equals={"kind": "x"})])) == 4  # an empty branch always holds
    assert len(store.search([DenseQuery(_vec(0))], Where(either=either), 10)[0]) == 3


def test_a_collection_gets_the_indexes_its_spec_gained(tmp_path: Path) -> None:
    older = CollectionSpec("grown", dim=8, keyword_fields=("kind",))
    s = EdgeStore(tmp_path / "grown", older)
    s.upsert([Item(str(uuid.uuid4()), {"kind": "x", "heard": ["a"]}, _vec(0), None)])
    s.close()
    s = EdgeStore(tmp_path / "grown", CollectionSpec("grown", dim=8, keyword_fields=("kind", "heard")))
    try:
        assert set(s._shard.info().payload_schema) == {"kind", "heard"}
        assert s.count(Where(all_of={"heard": ["a"]})) == 1
    finally:
        s.close()


def test_conditional_writes_and_latest(store: VectorStore) -> None:
    ids = _fill(store)
    a, fresh = ids[0], str(uuid.uuid4())
    store.upsert([Item(a, {"text": "changed", "user_id": "a", "ts": 0.0}), Item(fresh, {"text": "new", "ts": 9.0})],
                 only_new=True)  # the existing point stays as it was, the new one is written
    assert store.retrieve([a])[0].payload["text"] == TEXTS[0]
    assert store.retrieve([fresh])[0].payload["text"] == "new"
    store.upsert([Item(a, {"text": "lost", "ts": 0.0})], only_if=Where(equals={"kind": "y"}))  # a is kind x
    assert store.retrieve([a])[0].payload["text"] == TEXTS[0]
    store.upsert([Item(a, {"text": "won", "ts": 0.0, "kind": "x"})], only_if=Where(equals={"kind": "x"}))
    assert store.retrieve([a])[0].payload["text"] == "won"
    assert [h.payload["ts"] for h in store.latest(Where(ranges={"ts": (None, 6.0)}), "ts", 3)] == [6.0, 5.0, 4.0]
    assert [h.id for h in store.latest(None, "ts", 1)] == [fresh]


def test_boolean_filters_are_refused_not_silently_empty() -> None:
    with pytest.raises(ValueError, match="booleans"):
        Where(equals={"flag": True})


def test_scroll_pages_cover_everything_once(store: VectorStore) -> None:
    ids = _fill(store)
    seen: list[str] = []
    offset = None
    while True:
        page, offset = store.scroll(None, 3, offset)
        seen += [h.id for h in page]
        if offset is None:
            break
    assert sorted(seen) == sorted(ids)


def test_highest_and_lowest_come_first_and_page_by_range(store: VectorStore) -> None:
    ids = _fill(store)
    assert [h.id for h in store.highest(Where(equals={"user_id": "a"}), "ts", 3)] == [ids[6], ids[4], ids[2]]
    assert [h.payload["ts"] for h in store.highest(Where(ranges={"ts": (None, 4.0)}), "ts", 2)] == [4.0, 3.0]
    assert [h.id for h in store.lowest(Where(equals={"user_id": "a"}), "ts", 2)] == [ids[0], ids[2]]
    assert [h.payload["ts"] for h in store.lowest(Where(ranges={"ts": (4.0, None)}), "ts", 2)] == [4.0, 5.0]


def test_set_payload_delete_and_delete_where(store: VectorStore) -> None:
    ids = _fill(store)
    store.set_payload([ids[0]], {"flag": True})
    assert store.retrieve([ids[0]])[0].payload["flag"] is True
    assert store.retrieve([ids[0]])[0].payload["text"] == TEXTS[0]
    store.delete([ids[0]])
    assert store.retrieve([ids[0]]) == []
    store.delete_where(Where(equals={"user_id": "b"}))
    assert store.count() == 3
    with pytest.raises(ValueError):
        store.delete_where(Where())
    store.compact()
    assert store.count() == 3


@pytest.mark.parametrize("kind", ["edge", "qdrant-local"])
def test_collections_are_listed_and_dropped(kind: str, tmp_path: Path) -> None:
    from qdrant_client import QdrantClient

    def opener() -> Callable[[CollectionSpec], VectorStore]:
        if kind == "edge":
            return lambda spec: EdgeStore(tmp_path / spec.name, spec)
        client = QdrantClient(path=str(tmp_path / "qdrant"))  # one client per path (local mode locks it)
        return lambda spec: ServerStore(client, f"alphaavatar_test_{spec.name}", spec)

    open_ = opener()
    one, two = open_(CollectionSpec("one", dim=8)), open_(SPEC)
    _fill(two)
    assert one.collections() == two.collections() == ["contract", "one"]
    two.drop()  # closes it (on qdrant-local with the client it shares with `one`)
    if kind == "edge":
        assert not (tmp_path / "contract").exists()
        one.close()
    again = opener()(CollectionSpec("one", dim=8))
    assert again.collections() == ["one"]
    again.close()
    reopened = opener()(SPEC)
    assert reopened.count() == 0  # dropped means its points are gone, not only hidden
    reopened.close()


def test_edge_store_survives_reopen_and_is_locked(tmp_path: Path) -> None:
    s = EdgeStore(tmp_path / "c", SPEC)
    ids = _fill(s)
    with pytest.raises(StoreLocked, match="in use by process"):
        EdgeStore(tmp_path / "c", SPEC)
    s.close()
    again = EdgeStore(tmp_path / "c", SPEC)
    assert again.count() == len(ids)
    assert again.search([SparseQuery("jazz")], None, 1)[0][0].payload["text"] == "alice likes jazz"
    again.close()


def test_compact_erases_deleted_payload_bytes(tmp_path: Path) -> None:
    s = EdgeStore(tmp_path / "c", SPEC)
    _fill(s)
    marker = "zq-unique-marker-erase-me"
    mid = str(uuid.uuid4())
    s.upsert([Item(mid, {"text": marker, "user_id": "gone"}, _vec(3), marker)])
    s.delete_where(Where(equals={"user_id": "gone"}))
    s.compact()
    assert s.search([SparseQuery("jazz")], None, 1)[0][0].payload["text"] == "alice likes jazz"
    assert s.search([DenseQuery(_vec(2))], None, 1)[0][0].payload["text"] == TEXTS[2]
    assert s.count() == len(TEXTS)
    s.close()
    leftovers = [p for p in (tmp_path / "c").rglob("*") if p.is_file() and marker.encode() in p.read_bytes()]
    assert leftovers == []


def test_edge_log_stays_bounded_under_many_writes(tmp_path: Path) -> None:
    """Without checkpoints Edge's log keeps every write since the open (a 32 MB segment per 32 MB
    written): on disk, in mapped memory and in the next open's replay."""
    s = EdgeStore(tmp_path / "c", SPEC)
    blob = "x" * 60_000
    wal = tmp_path / "c" / "shard" / "wal"
    most = 0
    for batch in range(40):  # 2,000 points of 60 kB: about four segments' worth of log
        s.upsert([Item(str(uuid.uuid4()), {"text": blob, "n": batch}, _vec(batch % len(TEXTS)), None)
                  for _ in range(50)])
        most = max(most, sum(p.name.startswith("closed-") for p in wal.iterdir()))
    assert most <= 2, f"{most} closed log segments at once: the log is not being checkpointed"
    s.close()
    again = EdgeStore(tmp_path / "c", SPEC)
    assert again.count() == 2000
    again.close()


HEAP_PROBE = """
import sys, uuid
from pathlib import Path
from mcp_servers.core.store import CollectionSpec, Item
from mcp_servers.core.store.edge import EdgeStore
from tests.support import heap_mb as heap
spec = CollectionSpec("h", dim=32, tenant_fields=("user_id",), keyword_fields=("kind",), float_fields=("ts",), sparse=True)
root = Path(sys.argv[1])
store = EdgeStore(root / "h", spec)
start = heap()
for b in range(1500):
    store.upsert([Item(str(uuid.uuid4()), {"user_id": f"u{i % 10}", "kind": "note", "ts": float(b), "text": f"note {b} {i}"},
                       [float((b * 20 + i) % 7 + 1)] * 32, f"note {b} {i} garden bees") for i in range(20)])
written = heap() - start
store.close()
store = EdgeStore(root / "h", spec)
assert store.count() == 30_000
print(written, heap() - start)
"""


def test_edge_heap_under_writes_is_the_datas(tmp_path: Path) -> None:
    """Edge holds every point's update in memory until a flush; checkpoints every few thousand points
    keep that bounded, so a store that has taken 30,000 writes holds what it holds reopened (without
    them: 10 MB more, held until the log rolled)."""
    out = subprocess.run([sys.executable, "-c", HEAP_PROBE, str(tmp_path)], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    written, reopened = map(float, out.stdout.split())
    assert written - reopened < 3, f"heap +{written:.1f} MB after the writes, +{reopened:.1f} MB reopened on them"
