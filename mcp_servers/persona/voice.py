"""The base of speaker-embedding backends (`voice_resemblyzer.py`, `voice_wespeaker.py`) and the
thread all voice work (decoding, embedding) runs on."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from .decisions import LengthCurve
from .workers import Worker, one_torch_thread

WORKER = Worker("voice", initializer=one_torch_thread)


class VoiceModel(ABC):
    """One speaker-embedding model: unit vectors for utterances and for sliding windows."""

    name: str
    dim: int
    curve: LengthCurve  # thresholds by seconds of speech

    @abstractmethod
    def embed(self, speech: np.ndarray) -> np.ndarray:
        """A unit vector for one utterance (16 kHz float32, silences already trimmed)."""

    @abstractmethod
    def windows(self, wav: np.ndarray, hop: float) -> tuple[np.ndarray, np.ndarray, int]:
        """(unit vectors, start samples, window length in samples) for windows every `hop` seconds."""
