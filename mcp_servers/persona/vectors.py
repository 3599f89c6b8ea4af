"""Embedding vectors: every model's output, and every stored sample, is a unit vector (cosine = dot)."""

from __future__ import annotations

import numpy as np


def unit(v: np.ndarray) -> np.ndarray:
    """Rows (or one vector) scaled to length 1."""
    v = np.asarray(v, dtype=np.float32)
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)
