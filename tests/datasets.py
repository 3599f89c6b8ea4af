"""The shared dev datasets (`../shared/datasets`, read at run time, never copied) for tests and benches.

Tests that need a dataset skip with the reason when it is absent (`needs_fsdd`, `needs_faces`).
"""

from __future__ import annotations

import base64
import io
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.support import DATASETS

FSDD = DATASETS / "fsdd-dev"
FACES = DATASETS / "faces-dev"
RATE = 8000  # FSDD's sample rate
needs_fsdd = pytest.mark.skipif(not FSDD.is_dir(), reason=f"FSDD dev split not found at {FSDD}")
needs_faces = pytest.mark.skipif(not FACES.is_dir(), reason=f"dev faces not found at {FACES}")


def fsdd(digits: int = 5, root: Path = FSDD) -> dict[str, list[np.ndarray]]:
    """Utterances of `digits` consecutive recordings of one speaker (as the probes build them), 8 kHz."""
    recs: dict[str, list[tuple[int, int, Path]]] = defaultdict(list)
    for p in root.glob("*.wav"):
        digit, speaker, index = p.stem.split("_")
        recs[speaker].append((int(index), int(digit), p))
    gap = np.zeros(int(0.1 * RATE), dtype=np.float32)
    out = {}
    for speaker, items in sorted(recs.items()):
        items.sort()
        utts = []
        for i in range(0, len(items) - digits + 1, digits):
            parts: list[np.ndarray] = []
            for _, _, p in items[i:i + digits]:
                parts += [sf.read(str(p), dtype="float32")[0], gap]
            utts.append(np.concatenate(parts[:-1]))
        out[speaker] = utts
    return out


def digits_of(speaker: str, digits: str, index: int) -> tuple[np.ndarray, int]:
    """The recordings of `digits` by one FSDD speaker (take `index`), back to back, int16."""
    parts = []
    rate = RATE
    for d in digits:
        samples, rate = sf.read(FSDD / f"{d}_{speaker}_{index}.wav", dtype="int16")
        parts.append(samples)
    return np.concatenate(parts), rate


def wav_b64(samples: np.ndarray, rate: int = RATE, fmt: str = "WAV") -> str:
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format=fmt, **({"subtype": "PCM_16"} if fmt == "WAV" else {}))
    return base64.b64encode(buf.getvalue()).decode()


def file_b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()
