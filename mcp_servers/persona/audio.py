"""Audio in: WAV/FLAC/OGG bytes to 16 kHz mono float32, bounded, with the speech in it found.

Speech is what webrtcvad calls speech *and* is not spectrally flat (webrtcvad alone takes white
noise for speech). Long silences are cut as resemblyzer does (smoothed mask, dilated by 210 ms),
so thresholds depend on the seconds of speech, not on the pauses around them.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import soxr
import webrtcvad
from scipy.ndimage import binary_dilation, uniform_filter1d

from mcp_servers.core.errors import UserError

from .media import sniff

SAMPLE_RATE = 16_000
FRAME = 480  # 30 ms at 16 kHz, webrtcvad's longest frame
MIN_RATE = 8_000
AUDIO_KINDS = ("a WAV file", "a FLAC file", "an OGG file")
TARGET_DBFS = -30.0  # resemblyzer's level; quiet recordings are raised to it, loud ones left alone
MAX_FLATNESS = 0.35  # white noise is ~0.56 per 30 ms frame; voiced speech far below, even at 10 dB SNR
BAND = (100, 3800)  # Hz: flatness is measured where every input (8 kHz and up) has content


@dataclass(frozen=True)
class Clip:
    """One recording at 16 kHz: the whole signal, and per 30 ms frame whether it is kept as speech."""

    wav: np.ndarray
    voiced: np.ndarray  # bool per frame: speech
    keep: np.ndarray  # bool per frame: speech plus the short pauses around it
    seconds: float

    @property
    def speech(self) -> np.ndarray:
        return self.wav[: len(self.keep) * FRAME][np.repeat(self.keep, FRAME)]

    @property
    def speech_seconds(self) -> float:
        return float(self.keep.sum()) * FRAME / SAMPLE_RATE


def decode(data: bytes, max_seconds: float) -> tuple[np.ndarray, int]:
    """(mono float32 samples, sample rate) of a WAV/FLAC/OGG file."""
    kind = sniff(data)
    if kind is not None and kind not in AUDIO_KINDS:
        raise UserError(f"This is {kind}, not audio: send WAV, FLAC or OGG.")
    try:
        info = sf.info(io.BytesIO(data))
        if 0 < info.samplerate < MIN_RATE:
            raise UserError(f"The audio is sampled at {info.samplerate} Hz; at least {MIN_RATE} Hz is needed.")
        if info.frames > 0 and info.samplerate > 0 and info.frames / info.samplerate > max_seconds + 0.01:
            raise UserError(f"The audio lasts {info.frames / info.samplerate:.1f} s; the limit is {max_seconds:.0f} s.")
        wav, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except UserError:
        raise
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError, EOFError) as exc:
        # libsndfile's own words, without the name of the in-memory file it was reading
        reason = getattr(exc, "error_string", None) or str(exc)
        raise UserError(f"The audio could not be decoded ({reason.rstrip('.')}); send WAV, FLAC or OGG.") from None
    if rate < MIN_RATE:
        raise UserError(f"The audio is sampled at {rate} Hz; at least {MIN_RATE} Hz is needed.")
    if len(wav) / rate > max_seconds + 0.01:
        raise UserError(f"The audio lasts {len(wav) / rate:.1f} s; the limit is {max_seconds:.0f} s.")
    if len(wav) == 0:
        raise UserError("The audio holds no samples.")
    if not np.isfinite(wav).all():
        raise UserError("The audio holds NaN or infinite samples.")
    return wav.mean(axis=1), int(rate)


def _raise_level(wav: np.ndarray) -> np.ndarray:
    rms = float(np.sqrt(np.mean(wav.astype(np.float64) ** 2)))
    if rms <= 1e-8:
        return wav
    gain = 10 ** ((TARGET_DBFS - 20 * np.log10(rms)) / 20)
    return wav * gain if gain > 1 else wav


def speech_frames(wav: np.ndarray) -> np.ndarray:
    """Per 30 ms frame: speech by webrtcvad (most aggressive mode) and not noise-flat."""
    n = len(wav) // FRAME
    if n == 0:
        return np.zeros(0, dtype=bool)
    frames = wav[: n * FRAME].reshape(n, FRAME)
    pcm = (np.clip(frames, -1, 1) * 32767).astype("<i2")
    vad = webrtcvad.Vad(3)
    voiced = np.array([vad.is_speech(f.tobytes(), SAMPLE_RATE) for f in pcm])
    band = slice(BAND[0] * FRAME // SAMPLE_RATE, BAND[1] * FRAME // SAMPLE_RATE)
    power = np.abs(np.fft.rfft(frames * np.hanning(FRAME), axis=1))[:, band] ** 2 + 1e-12
    flatness = np.exp(np.log(power).mean(axis=1)) / power.mean(axis=1)
    loud = np.sqrt((frames**2).mean(axis=1)) > 1e-4
    return np.asarray(voiced & (flatness < MAX_FLATNESS) & loud)


def keep_mask(speech: np.ndarray) -> np.ndarray:
    """Speech frames smoothed over 240 ms and dilated by 210 ms on each side (resemblyzer's trimming)."""
    if len(speech) == 0:
        return speech
    smooth = uniform_filter1d(speech.astype(np.float32), size=8, mode="constant") > 0.5
    return np.asarray(binary_dilation(smooth, np.ones(7, dtype=bool)))


def load(data: bytes, max_seconds: float, min_speech: float) -> Clip:
    """Decode, resample to 16 kHz and find the speech; a clear error when there is too little."""
    wav, rate = decode(data, max_seconds)
    if rate != SAMPLE_RATE:
        wav = soxr.resample(wav, rate, SAMPLE_RATE, quality="HQ").astype(np.float32)
    wav = np.clip(_raise_level(wav), -1.0, 1.0).astype(np.float32)
    voiced = speech_frames(wav)
    clip = Clip(wav, voiced, keep_mask(voiced), len(wav) / SAMPLE_RATE)
    if clip.speech_seconds == 0:
        raise UserError("No speech was found in this audio (silence or noise).")
    if clip.speech_seconds < min_speech:
        raise UserError(
            f"Only {clip.speech_seconds:.2f} s of speech was found; at least {min_speech:.1f} s is needed."
        )
    return clip
