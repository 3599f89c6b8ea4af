"""The cameras' recent frames: for who is speaking (by face) and for what the LLM sees.

The worker feeds every frame of a participant's video track into `Cameras`; each camera keeps
its last `WINDOW_SECONDS`. At the end of a turn the agent samples a few of those frames, evenly
spread over the window around the end of speech and downscaled (`sample`), for that turn's
user message; the latest one, as JPEG, goes with the voice to the persona server (`identify`).
"""

from __future__ import annotations

import base64
import time
from collections import deque

from livekit import rtc
from livekit.agents.utils.images import EncodeOptions, ResizeOptions, encode

FRESH_SECONDS = 3.0
WINDOW_SECONDS = 2.0


class Cameras:
    """The recent frames of each camera (by participant identity)."""

    def __init__(self) -> None:
        self._frames: dict[str, deque[tuple[rtc.VideoFrame, float]]] = {}
        self._sampled_at = 0.0  # frames up to here went with an earlier turn

    def see(self, frame: rtc.VideoFrame, source: str = "") -> None:
        now = time.monotonic()
        frames = self._frames.setdefault(source, deque())
        frames.append((frame, now))
        while frames and now - frames[0][1] > WINDOW_SECONDS:
            frames.popleft()

    def _recent(self, source: str | None) -> list[tuple[rtc.VideoFrame, float]]:
        """The frames of the freshest matching camera, oldest first; none if it went quiet."""
        cams = [f for k, f in self._frames.items() if f and (source is None or k == source)]
        if not cams:
            return []
        frames = max(cams, key=lambda f: f[-1][1])
        return list(frames) if time.monotonic() - frames[-1][1] <= FRESH_SECONDS else []

    def fresh(self, source: str | None = None) -> bool:
        """Whether a camera (of `source`, or any when None) sent a frame in the last few seconds."""
        return bool(self._recent(source))

    def jpeg(self, source: str | None = None) -> bytes | None:
        """The latest frame of `source` (of any camera when None) as JPEG, or None when there is
        none from the last few seconds."""
        recent = self._recent(source)
        if not recent:
            return None
        return encode(recent[-1][0], EncodeOptions(format="JPEG", quality=90))

    def sample(self, source: str | None, count: int, max_side: int) -> list[str]:
        """Up to `count` frames spread evenly over the window, each at most `max_side` pixels on
        its longer side, as JPEG data URLs (what an OpenAI-compatible vision model takes). Frames an
        earlier sample took are never taken again."""
        recent = [(f, at) for f, at in self._recent(source) if at > self._sampled_at]
        self._sampled_at = time.monotonic()
        if not recent or count < 1:
            return []
        step = max(1, len(recent) // count)
        picked = recent[::-1][::step][:count][::-1]  # the latest frame always, then back in time
        out = []
        for frame, _ in picked:
            scale = min(1.0, max_side / max(frame.width, frame.height))
            size = ResizeOptions(width=max(1, round(frame.width * scale)), height=max(1, round(frame.height * scale)),
                                 strategy="scale_aspect_fit")
            data = encode(frame, EncodeOptions(format="JPEG", quality=80, resize_options=size))
            out.append("data:image/jpeg;base64," + base64.b64encode(data).decode("ascii"))
        return out

