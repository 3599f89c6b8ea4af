"""The base of face backends (`face_dlib.py`, `face_insightface.py`) and the thread all face work
(decoding, detection, encoding) runs on: its own, so a photo never delays a voice identification."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from .decisions import Thresholds
from .workers import Worker

WORKER = Worker("face")
MAX_FACES = 20


@dataclass(frozen=True)
class Face:
    box: tuple[float, float, float, float]  # left, top, right, bottom, in the pixels of the array given
    score: float  # detector confidence
    embedding: np.ndarray  # unit vector


class FaceModel(ABC):
    name: str
    dim: int
    thresholds: Thresholds

    @abstractmethod
    def faces(self, rgb: np.ndarray, upsample: int | None = None) -> list[Face]:
        """Every face found (at most MAX_FACES, largest first), each with its encoding."""
