"""Audio of the current user turn, kept for speaker identification.

The STT node tees every input frame here; when voice activity starts a turn, the start is
marked (with a pre-roll that covers a VAD running late); at the end of the turn `take()` returns that span as 16 kHz
mono WAV — what the persona server identifies — and starts the next turn afresh.
"""

from __future__ import annotations

import base64
from collections import deque

import numpy as np
from livekit import rtc

ID_RATE = 16_000


class TurnAudio:
    def __init__(self, max_seconds: float = 30.0, preroll_seconds: float = 1.0):
        self._frames: deque[rtc.AudioFrame] = deque()
        self._seconds = 0.0
        self._max = max_seconds
        self._preroll = preroll_seconds
        self._speech = False  # voice activity seen in this turn

    def push(self, frame: rtc.AudioFrame) -> None:
        self._frames.append(frame)
        self._seconds += frame.duration
        # Before speech only the pre-roll is worth keeping; during it, at most `max_seconds`.
        keep = self._max if self._speech else self._preroll
        while len(self._frames) > 1 and self._seconds - self._frames[0].duration >= keep:
            self._seconds -= self._frames.popleft().duration

    def mark_speech(self) -> None:
        """Voice activity started: this turn's audio begins here (with the pre-roll)."""
        self._speech = True

    def peek(self) -> bytes | None:
        """This turn's audio so far, as 16 kHz mono WAV (None if no speech was heard)."""
        return to_wav16k(list(self._frames)) if self._frames and self._speech else None

    def take(self) -> bytes | None:
        """This turn's audio as 16 kHz mono WAV (None if no speech was heard); resets the buffer."""
        frames, speech = list(self._frames), self._speech
        self.clear()
        return to_wav16k(frames) if frames and speech else None

    def clear(self) -> None:
        """Start the next turn afresh, without encoding this one's audio (nobody needs it)."""
        self._frames.clear()
        self._seconds = 0.0
        self._speech = False


def to_wav16k(frames: list[rtc.AudioFrame]) -> bytes:
    merged = rtc.combine_audio_frames(frames)
    if merged.num_channels > 1:
        data = np.frombuffer(merged.data, dtype=np.int16).reshape(-1, merged.num_channels)
        mono = data.mean(axis=1).astype(np.int16)
        merged = rtc.AudioFrame(mono.tobytes(), merged.sample_rate, 1, len(mono))
    if merged.sample_rate != ID_RATE:
        resampler = rtc.AudioResampler(merged.sample_rate, ID_RATE, num_channels=1)
        out = [*resampler.push(merged), *resampler.flush()]
        merged = rtc.combine_audio_frames(out)
    return merged.to_wav_bytes()


def wav_base64(wav: bytes) -> str:
    return base64.b64encode(wav).decode("ascii")
