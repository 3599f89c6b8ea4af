"""Lip-sync: a 20 ms mouth-open envelope from PCM, and a viseme track from text (espeak-ng, the library).

`MouthEnvelope` is streaming: `push(chunk)` returns the frames completed by that chunk, so a
renderer can move the mouth while TTS audio is still arriving. Each frame is the RMS of 20 ms,
gated (silence → closed), smoothed with separate attack/release, and normalised per utterance
by the loudest frame so far. `visemes()` turns espeak-ng's phonemes into the 15-viseme set of
the protocol, with durations weighted by phoneme class and stretched over the voiced span.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass

import numpy as np

from . import espeak
from .protocol import FRAME_MS, VisemeCue

MIN_RATE, MAX_RATE = 1000, 384_000  # sample rates a mouth envelope can be computed at


class AudioError(ValueError):
    """Audio that cannot be decoded or used; the message says why."""


def to_float_mono(pcm: np.ndarray | bytes, dtype: str = "int16", channels: int = 1) -> np.ndarray:
    """PCM as float32 mono in [-1, 1]: int16/int32/float arrays or raw little-endian bytes."""
    arr = np.frombuffer(pcm, dtype=np.dtype(dtype).newbyteorder("<")) if isinstance(pcm, bytes | bytearray) else pcm
    if arr.ndim == 1 and channels > 1:
        arr = arr[: len(arr) - len(arr) % channels].reshape(-1, channels)
    if arr.ndim == 2:
        arr = arr.mean(axis=1) if np.issubdtype(arr.dtype, np.floating) else arr.astype(np.float64).mean(axis=1)
    if np.issubdtype(arr.dtype, np.integer):
        scale = float(np.iinfo(arr.dtype).max) + 1.0
        return (arr.astype(np.float32) / scale).astype(np.float32)
    return np.asarray(arr, dtype=np.float32)


def decode_audio(data: bytes, max_seconds: float = 300.0) -> tuple[np.ndarray, int]:
    """Decode an audio file (WAV, FLAC, OGG…) to float32 mono and its sample rate."""
    import soundfile as sf

    try:
        info = sf.info(io.BytesIO(data))
        if info.frames <= 0 or info.samplerate <= 0:
            raise AudioError("the audio has no samples")
        if info.frames / info.samplerate > max_seconds:
            raise AudioError(f"the audio is {info.frames / info.samplerate:.0f} s long; the limit is {max_seconds:.0f} s")
        samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except AudioError:
        raise
    except (RuntimeError, ValueError, TypeError) as exc:  # soundfile raises LibsndfileError(RuntimeError)
        # libsndfile's own words, without the name of the in-memory file it was reading
        reason = getattr(exc, "error_string", None) or str(exc)
        raise AudioError(f"could not decode the audio ({reason.rstrip('.')}); send a WAV, FLAC or OGG file") from None
    if not MIN_RATE <= rate <= MAX_RATE:
        raise AudioError(f"the audio is sampled at {rate} Hz; send {MIN_RATE}–{MAX_RATE} Hz audio")
    mono = samples.mean(axis=1).astype(np.float32)
    if not np.all(np.isfinite(mono)):
        raise AudioError("the audio holds non-finite samples")
    return mono, int(rate)


@dataclass
class EnvelopeConfig:
    frame_ms: int = FRAME_MS
    attack_ms: float = 30.0
    release_ms: float = 90.0
    gate_db: float = -45.0  # frames quieter than this (dBFS) are silence
    rel_gate: float = 0.12  # … and so are frames below this fraction of the loudest frame
    floor_db: float = -30.0  # the normaliser never divides by less than this level


class MouthEnvelope:
    """Streaming mouth-open envelope for one utterance at one sample rate."""

    def __init__(self, sample_rate: int, config: EnvelopeConfig | None = None):
        if not MIN_RATE <= sample_rate <= MAX_RATE:
            raise AudioError(f"sample rate {sample_rate} Hz is not a usable audio rate")
        self.cfg = config or EnvelopeConfig()
        self.rate = sample_rate
        self._pending = np.zeros(0, dtype=np.float32)
        self._frames_done = 0
        self._consumed = 0  # samples consumed into finished frames
        self._level = 0.0
        self._peak = 10 ** (self.cfg.floor_db / 20)
        step = self.cfg.frame_ms / 1000.0
        self._a_attack = 1.0 - math.exp(-step / (self.cfg.attack_ms / 1000.0))
        self._a_release = 1.0 - math.exp(-step / (self.cfg.release_ms / 1000.0))
        self._gate = 10 ** (self.cfg.gate_db / 20)

    def _boundary(self, k: int) -> int:
        """Sample index where frame k starts (exact for any rate, e.g. 11025 Hz)."""
        return (k * self.rate * self.cfg.frame_ms) // 1000

    def push(self, pcm: np.ndarray | bytes, dtype: str = "int16", channels: int = 1) -> list[float]:
        """Add audio; return the mouth values of every frame this chunk completed."""
        x = to_float_mono(pcm, dtype, channels)
        buf = np.concatenate([self._pending, x]) if self._pending.size else x
        start = self._consumed
        k = self._frames_done
        bounds = []
        while self._boundary(k + 1) - start <= len(buf):
            bounds.append(self._boundary(k + 1) - start)
            k += 1
        if not bounds:
            self._pending = buf
            return []
        edges = np.array([self._boundary(self._frames_done) - start, *bounds])
        sq = np.concatenate([[0.0], np.cumsum(buf[: edges[-1]].astype(np.float64) ** 2)])
        rms = np.sqrt((sq[edges[1:]] - sq[edges[:-1]]) / np.maximum(edges[1:] - edges[:-1], 1))
        self._pending = buf[edges[-1]:]
        self._consumed += int(edges[-1])
        self._frames_done = k
        return self._shape(rms)

    def flush(self) -> list[float]:
        """Finish the utterance: the last partial frame, if any."""
        if not self._pending.size:
            return []
        rms = np.array([float(np.sqrt(np.mean(self._pending.astype(np.float64) ** 2)))])
        self._pending = np.zeros(0, dtype=np.float32)
        self._frames_done += 1
        return self._shape(rms)

    def _shape(self, rms: np.ndarray) -> list[float]:
        out = []
        for r in rms.tolist():
            self._peak = max(self._peak, r)
            target = 0.0 if r < self._gate or r < self.cfg.rel_gate * self._peak else r / self._peak
            alpha = self._a_attack if target > self._level else self._a_release
            self._level += alpha * (target - self._level)
            out.append(round(min(1.0, self._level), 3))
        return out


def envelope(pcm: np.ndarray, sample_rate: int, config: EnvelopeConfig | None = None) -> list[float]:
    """The whole-utterance envelope, normalised by the utterance's loudest frame."""
    env = MouthEnvelope(sample_rate, config)
    first = env.push(pcm, dtype="float32")
    frames = first + env.flush()
    peak = max(frames, default=0.0)
    return [round(v / peak, 3) for v in frames] if peak > 0 else frames


# --- visemes from text ---------------------------------------------------------------------------

# espeak-ng "-x" phoneme mnemonics → viseme; longest prefix wins.
_PHONEME_VISEME: dict[str, str] = {
    "p": "PP", "b": "PP", "m": "PP",
    "f": "FF", "v": "FF",
    "T": "TH", "D": "TH",
    "t": "DD", "d": "DD", "t#": "DD", "d#": "DD",
    "k": "kk", "g": "kk", "N": "kk", "x": "kk", "h": "kk",
    "tS": "CH", "dZ": "CH", "S": "CH", "Z": "CH", "j": "ih",
    "s": "SS", "z": "SS",
    "n": "nn", "l": "nn", "L": "nn",
    "r": "RR", "r-": "RR", "3": "RR", "3:": "RR", "R": "RR",
    "w": "ou", "W": "ou",
    "a": "aa", "a#": "aa", "A": "aa", "A:": "aa", "aI": "aa", "aU": "aa", "V": "aa", "&": "aa",
    "E": "E", "e": "E", "eI": "E", "e@": "E", "@": "E", "@L": "E", "@2": "E", "@5": "E",
    "I": "ih", "i": "ih", "i:": "ih", "I2": "ih", "I#": "ih", "i@": "ih",
    "0": "oh", "O": "oh", "O:": "oh", "o": "oh", "oU": "oh", "OI": "oh", "O@": "oh", "o@": "oh",
    "U": "ou", "u": "ou", "u:": "ou", "U@": "ou",
}
_VOWEL_VISEMES = {"aa", "E", "ih", "oh", "ou"}
_WEIGHT = {"vowel": 2.2, "consonant": 1.0, "pause": 2.5}


def phonemes(text: str, voice: str = "en-us") -> list[list[str]]:
    """espeak-ng phonemes per word, e.g. [["h", "@", "l", "oU"], ["w", "3:", "l", "d"]]; [] ends a clause."""
    words: list[list[str]] = []
    for clause in espeak.clause_phonemes(text, voice):
        for word in clause.split():
            ph = [re.sub(r"[',%=]", "", p) for p in word.split("_")]
            ph = [p for p in ph if p]
            if ph:
                words.append(ph)
        words.append([])  # a clause boundary: a short pause
    return words


def viseme_of(phoneme: str) -> str:
    for cut in range(len(phoneme), 0, -1):
        hit = _PHONEME_VISEME.get(phoneme[:cut])
        if hit:
            return hit
    return "E" if phoneme[:1] in "aeiouAEIOU@03" else "DD"


def visemes(text: str, duration_ms: int, start_ms: int = 0, voice: str = "en-us") -> list[VisemeCue]:
    """Visemes for `text`, spread over `duration_ms` starting at `start_ms` (the voiced span)."""
    words = phonemes(text, voice)
    units: list[tuple[str, float]] = []
    for word in words:
        if not word:
            if units and units[-1][0] != "sil":
                units.append(("sil", _WEIGHT["pause"]))
            continue
        for ph in word:
            vis = viseme_of(ph)
            units.append((vis, _WEIGHT["vowel"] if vis in _VOWEL_VISEMES else _WEIGHT["consonant"]))
    while units and units[-1][0] == "sil":
        units.pop()
    if not units or duration_ms <= 0:
        return []
    total = sum(w for _, w in units)
    cues: list[VisemeCue] = []
    t = float(start_ms)
    for vis, w in units:
        dur = duration_ms * w / total
        if cues and cues[-1].viseme == vis:
            cues[-1].dur_ms = round(t + dur) - cues[-1].t_ms
        else:
            cues.append(VisemeCue(t_ms=round(t), dur_ms=max(1, round(t + dur) - round(t)), viseme=vis))  # type: ignore[arg-type]
        t += dur
    return cues


def estimate_duration_ms(text: str, words_per_minute: float = 160.0) -> int:
    """Speaking time of `text` when no audio is given (espeak-ng's default rate is ~175 wpm)."""
    words = max(1, len(text.split()))
    return int(words * 60_000 / words_per_minute)


def voiced_span(mouth: list[float], frame_ms: int = FRAME_MS, threshold: float = 0.05) -> tuple[int, int]:
    """(start_ms, end_ms) from the first to the last open-mouth frame."""
    open_idx = [i for i, v in enumerate(mouth) if v > threshold]
    if not open_idx:
        return 0, len(mouth) * frame_ms
    return open_idx[0] * frame_ms, (open_idx[-1] + 1) * frame_ms


_OPENNESS = {"sil": 0.0, "PP": 0.05, "FF": 0.2, "TH": 0.3, "DD": 0.35, "kk": 0.4, "CH": 0.35, "SS": 0.25,
             "nn": 0.3, "RR": 0.4, "aa": 1.0, "E": 0.7, "ih": 0.5, "oh": 0.8, "ou": 0.45}


def mouth_from_visemes(cues: list[VisemeCue], duration_ms: int, frame_ms: int = FRAME_MS) -> list[float]:
    """A mouth envelope drawn from visemes, for speech without audio."""
    n = max(1, math.ceil(duration_ms / frame_ms))
    out = [0.0] * n
    for cue in cues:
        a, b = cue.t_ms // frame_ms, min(n, math.ceil((cue.t_ms + cue.dur_ms) / frame_ms))
        for i in range(a, b):
            out[i] = _OPENNESS[cue.viseme]
    return out
