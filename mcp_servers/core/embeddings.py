"""Text embeddings: all-MiniLM-L6-v2 on CPU by default (`text_weights` finds it), or an OpenAI-compatible endpoint.

Loaded once per process in the background (a server answers `initialize` before the model is
ready; the first call waits for it), and run on worker threads off the event loop. Calls that
arrive while the model is busy are embedded together in its next batch (`GroupCommit`): under
load, ten searches and adds cost about one model call instead of ten in a queue. Two batches
run at once by default (`embedding_workers`), each on one torch thread: on two cores a search
need not wait behind the batch before it (or behind a long document being embedded).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from . import heap, text_models, text_weights
from .batching import GroupCommit
from .health import load_state
from .settings import Settings

log = logging.getLogger(__name__)


class Embedder(ABC):
    dim: int
    name: str
    workers: int = 1  # batches embedded at once
    _batcher: GroupCommit[list[str], np.ndarray] | None = None
    _executor: ThreadPoolExecutor | None = None

    @abstractmethod
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-norm float32 rows, one per text (blocking)."""

    def warm(self) -> None:
        """Start loading in the background (no-op when there is nothing to load)."""

    @property
    def state(self) -> str:
        """'loading', 'ready' or 'failed: <reason>' (for /healthz)."""
        return "ready"

    @property
    def ready(self) -> bool:
        """True once a call will not wait for loading (and loading worked)."""
        return self.state == "ready"

    @property
    def executor(self) -> ThreadPoolExecutor:
        """The model's own threads (created on first use; threads are never shared with other work)."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="embed")
        return self._executor

    async def aembed(self, texts: Sequence[str]) -> np.ndarray:
        if self._batcher is None:
            self._batcher = GroupCommit(self._embed_together, window=0.0, max_batch=64, lanes=self.workers)
        return await self._batcher.submit(list(texts))

    async def _embed_together(self, calls: list[list[str]]) -> list[np.ndarray | BaseException]:
        flat = [t for texts in calls for t in texts]
        rows = await asyncio.get_running_loop().run_in_executor(self.executor, self.embed, flat)
        out: list[np.ndarray | BaseException] = []
        start = 0
        for texts in calls:
            out.append(rows[start:start + len(texts)])
            start += len(texts)
        return out


def _by_length(texts: Sequence[str], most: int = 64) -> list[list[int]]:
    """Indices of `texts` in groups of like length (each at most twice the shortest, plus slack)."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    groups: list[list[int]] = []
    for i in order:
        if groups and len(groups[-1]) < most and len(texts[i]) <= 2 * len(texts[groups[-1][0]]) + 40:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


class LocalEmbedder(Embedder):
    """all-MiniLM-L6-v2 wherever `text_weights` finds it (downloaded on first load if it is nowhere here),
    or the local model folder `model_path`.

    `precision`: 'auto' (small batches on ONNX Runtime, large ones on torch bf16 where the CPU
    computes bf16 natively: see `text_models`), 'fp32' (ONNX Runtime only) or 'bf16' (torch
    autocast only). A model that does not mean-pool runs on torch.
    """

    def __init__(self, model_path: str | None = None, dim: int = 384, threads: int = 1, precision: str = "auto",
                 workers: int = 1, cache_dir: Path | None = None):
        self.dim = dim
        self.workers = workers
        self._threads = threads
        self._precision = precision
        self._cache_dir = cache_dir or Settings().cache_dir
        self.name = model_path or "all-MiniLM-L6-v2"
        self._path = model_path
        self._future: Future[Any] | None = None
        self._lock = threading.Lock()

    def _load(self) -> text_models.Runtimes:
        model_dir = text_weights.locate(self._path)  # before offline mode is set: it may download
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # sentence-transformers (large batches) loads a folder
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        runtimes = text_models.Runtimes(model_dir, self._precision, self._threads, self._cache_dir)
        self._encode(runtimes, ["warm up"])
        log.info("embedding model loaded", extra={"fields": {"model": self.name, "folder": str(model_dir),
                                                             "small batches": type(runtimes.small).__name__}})
        return runtimes

    def _encode(self, runtimes: text_models.Runtimes, texts: list[str]) -> np.ndarray:
        """Texts of like length go through the model together: a batch is padded to its longest
        text, so one page among ten short queries would make each of them cost a page."""
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for idx in _by_length(texts):
            out[idx] = runtimes.encoder(len(idx)).encode([texts[i] for i in idx])
        return out

    def warm(self) -> None:
        with self._lock:
            if self._future is None:
                self._future = heap.settle_after(self.executor.submit(self._load))

    @property
    def state(self) -> str:
        return load_state(self._future)

    def _model(self) -> text_models.Runtimes:
        self.warm()
        assert self._future is not None
        return self._future.result()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._encode(self._model(), list(texts))

    async def aembed(self, texts: Sequence[str]) -> np.ndarray:
        self.warm()
        assert self._future is not None
        await asyncio.wrap_future(self._future)
        return await super().aembed(texts)


class OpenAIEmbedder(Embedder):
    """Any OpenAI-compatible `/embeddings` endpoint."""

    def __init__(self, settings: Settings):
        from openai import OpenAI

        if not settings.embedding_model:
            raise ValueError("ALPHAAVATAR_EMBEDDER=openai needs ALPHAAVATAR_EMBEDDING_MODEL")
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else "unused"
        self._client = OpenAI(base_url=settings.llm_base_url, api_key=key)
        self.name = settings.embedding_model
        self.dim = settings.embedding_dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        resp = self._client.embeddings.create(model=self.name, input=list(texts))
        out = np.asarray([d.embedding for d in resp.data], dtype=np.float32)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def get_embedder(settings: Settings) -> Embedder:
    """The process-wide embedder for these settings (one model in memory, whatever the servers)."""
    key = (settings.embedder, settings.embedding_model, settings.embedding_dim, settings.embedding_precision,
           settings.embedding_workers)
    with _instances_lock:
        if key not in _instances:
            if settings.embedder == "openai":
                _instances[key] = OpenAIEmbedder(settings)
            elif settings.embedder == "local":
                _instances[key] = LocalEmbedder(
                    settings.embedding_model, settings.embedding_dim, settings.torch_threads,
                    settings.embedding_precision, settings.embedding_workers, settings.cache_dir,
                )
            else:
                raise ValueError(f"ALPHAAVATAR_EMBEDDER must be 'local' or 'openai', not {settings.embedder!r}")
        return _instances[key]


_instances: dict[tuple[str, str | None, int, str, int], Embedder] = {}
_instances_lock = threading.Lock()
