"""The local sentence-transformers encoder, run where each batch is fastest.

A server mostly embeds one to a few short texts, where torch pays per-operation overhead and ONNX
Runtime does not; a bulk import embeds dozens, where torch under bf16 autocast is faster
(`python bench/embedder.py`, docs/benchmarks.md). So small batches run on ONNX Runtime (fp32, the
graph written once from the same weights by `bert_onnx`, without torch; within 2e-7 of torch fp32)
and large ones on torch where it is installed and the CPU computes bf16 natively; elsewhere ONNX
Runtime runs everything (it beats torch fp32 at every size). Both give unit-norm mean-pooled rows.
"""

from __future__ import annotations

import atexit
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import threading
from importlib.metadata import version
from pathlib import Path
from typing import Protocol

import numpy as np

from . import bert_onnx, heap

log = logging.getLogger(__name__)

SMALL = 8  # a batch of at most this many texts goes to ONNX Runtime (queries are shorter than the bench's texts)
EXPORT_FORMAT = 2  # bump when the exported graph changes, so old cached files are not used


class Encoder(Protocol):
    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit-norm float32 rows, one per text (blocking)."""
        ...


def bf16_native() -> bool:
    """Whether torch is installed and this CPU computes bf16 natively."""
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def _max_length(model_dir: Path) -> int:
    cfg = model_dir / "sentence_bert_config.json"
    return int(json.loads(cfg.read_text()).get("max_seq_length", 512)) if cfg.exists() else 512


def mean_pooled(model_dir: Path) -> bool:
    """Whether the model averages its tokens (what `OnnxEncoder` computes; other models run on torch)."""
    cfg = model_dir / "1_Pooling" / "config.json"
    return not cfg.exists() or bool(json.loads(cfg.read_text()).get("pooling_mode_mean_tokens", False))


class TorchEncoder:
    """sentence-transformers itself, under bf16 autocast when `bf16` (fp32 accumulation and layer norms)."""

    def __init__(self, model_dir: Path, threads: int, bf16: bool):
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        torch.set_num_threads(threads)
        self.bf16 = bf16
        self.model = SentenceTransformer(str(model_dir), device="cpu")

    def encode(self, texts: list[str]) -> np.ndarray:
        import torch

        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            rows: np.ndarray = self.model.encode(texts, batch_size=64, normalize_embeddings=True,
                                                 convert_to_numpy=True)
        return rows


class OnnxEncoder:
    """The model's transformer on ONNX Runtime, with the same tokenizer, mean pooling and norm."""

    def __init__(self, model_dir: Path, onnx_file: Path, threads: int):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(_max_length(model_dir))
        self.tokenizer.enable_padding(pad_id=self.tokenizer.token_to_id("[PAD]") or 0)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(onnx_file), opts, providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.session.get_inputs()}

    def encode(self, texts: list[str]) -> np.ndarray:
        enc = self.tokenizer.encode_batch(texts)
        ids = np.asarray([e.ids for e in enc], dtype=np.int64)
        mask = np.asarray([e.attention_mask for e in enc], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        (hidden,) = self.session.run(None, {k: v for k, v in feeds.items() if k in self.inputs})
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        out: np.ndarray = (pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)).astype(np.float32)
        return out


def onnx_export(model_dir: Path, cache_dir: Path) -> Path:
    """The model's transformer as ONNX (`bert_onnx`, no torch), written on first use and kept in
    `cache_dir` (a few seconds, once per model file); written whole or not at all. Where `cache_dir`
    cannot be written (a read-only home), it goes to a private temporary folder of this process
    instead: written at every start, but the server still runs."""
    weights = model_dir / "model.safetensors"
    st = weights.stat()
    key = hashlib.sha256(json.dumps([str(weights.resolve()), st.st_size, st.st_mtime_ns, version("onnx"),
                                     EXPORT_FORMAT]).encode()).hexdigest()[:16]
    dest = cache_dir / f"{model_dir.name}-{key}.onnx"
    if dest.exists():
        return dest
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".onnx.part")
    except OSError as exc:
        log.warning("the cache folder cannot be written; the text model is exported for this process only",
                    extra={"fields": {"folder": str(cache_dir), "error": exc.strerror or str(exc)}})
        dest = Path(tempfile.mkdtemp(prefix="alphaavatar-")) / dest.name
        atexit.register(shutil.rmtree, dest.parent, True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, suffix=".onnx.part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(bert_onnx.build(model_dir))
        os.replace(tmp, dest)
    finally:
        Path(tmp).unlink(missing_ok=True)
    log.info("text model exported to ONNX", extra={"fields": {"file": str(dest)}})
    return dest


class Runtimes:
    """The encoder for a batch of each size. ONNX Runtime (loaded at once: it answers the first
    search) takes small batches; torch bf16 is loaded on the first large batch, where it is faster.
    'fp32' keeps every batch on ONNX Runtime, 'bf16' on torch, as does a model that does not mean-pool or
    that `bert_onnx` cannot write. Without torch installed, ONNX Runtime takes every batch."""

    def __init__(self, model_dir: Path, precision: str, threads: int, cache_dir: Path):
        self.model_dir, self.threads = model_dir, threads
        self._lock = threading.Lock()
        self.large: Encoder | None = None
        self.small: Encoder
        if precision == "bf16" or not (mean_pooled(model_dir) and bert_onnx.buildable(model_dir)):
            self.small = self.large = TorchEncoder(model_dir, threads, bf16=precision == "bf16" or (
                precision == "auto" and bf16_native()))
        else:
            self.small = OnnxEncoder(model_dir, onnx_export(model_dir, cache_dir), threads)
            if precision == "fp32":
                self.large = self.small

    def encoder(self, batch: int) -> Encoder:
        if batch <= SMALL:
            return self.small
        with self._lock:
            if self.large is None:
                self.large = TorchEncoder(self.model_dir, self.threads, bf16=True) if bf16_native() else self.small
                heap.settle()  # torch's objects join the permanent generation, as at every model load
                log.info("large batches run on", extra={"fields": {"runtime": type(self.large).__name__}})
            return self.large
