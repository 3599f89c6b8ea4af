"""The latest camera frame, for refining who is speaking by face.

The worker feeds every frame of a participant's video track into `LatestFrame`; at the end of a
spoken turn the agent takes the frame (if it is fresh) as JPEG and the persona server fuses
face and voice (`identify`).
"""

from __future__ import annotations

import io
import time

from livekit import rtc

FRESH_SECONDS = 3.0


class LatestFrame:
    """The latest frame of each camera (by participant identity)."""

    def __init__(self) -> None:
        self._frames: dict[str, tuple[rtc.VideoFrame, float]] = {}

    def see(self, frame: rtc.VideoFrame, source: str = "") -> None:
        self._frames[source] = (frame, time.monotonic())

    def fresh(self, source: str | None = None) -> bool:
        """Whether a camera (of `source`, or any when None) sent a frame in the last few seconds."""
        now = time.monotonic()
        return any(now - at <= FRESH_SECONDS for k, (_, at) in self._frames.items() if source is None or k == source)

    def jpeg(self, source: str | None = None) -> bytes | None:
        """The latest frame of `source` (of any camera when None) as JPEG, or None when there is
        none from the last few seconds."""
        seen = [v for k, v in self._frames.items() if source is None or k == source]
        if not seen:
            return None
        frame, at = max(seen, key=lambda v: v[1])
        if time.monotonic() - at > FRESH_SECONDS:
            return None
        from PIL import Image

        if frame.type != rtc.VideoBufferType.RGBA:
            frame = frame.convert(rtc.VideoBufferType.RGBA)
        image = Image.frombytes("RGBA", (frame.width, frame.height), bytes(frame.data)).convert("RGB")
        out = io.BytesIO()
        image.save(out, format="JPEG", quality=90)
        return out.getvalue()
