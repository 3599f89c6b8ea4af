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
    def __init__(self) -> None:
        self._frame: rtc.VideoFrame | None = None
        self._at = 0.0

    def see(self, frame: rtc.VideoFrame) -> None:
        self._frame, self._at = frame, time.monotonic()

    def jpeg(self) -> bytes | None:
        """The latest frame as JPEG, or None when there is none from the last few seconds."""
        if self._frame is None or time.monotonic() - self._at > FRESH_SECONDS:
            return None
        from PIL import Image

        frame = self._frame
        if frame.type != rtc.VideoBufferType.RGBA:
            frame = frame.convert(rtc.VideoBufferType.RGBA)
        image = Image.frombytes("RGBA", (frame.width, frame.height), bytes(frame.data)).convert("RGB")
        out = io.BytesIO()
        image.save(out, format="JPEG", quality=90)
        return out.getvalue()
