"""The session's speaker without a LiveKit room: keeps every frame it is given (tests/benches)."""

from __future__ import annotations

import time

from livekit import rtc
from livekit.agents.voice import io


class CapturedAudio(io.AudioOutput):
    """The session's speaker: keeps every frame and reports each segment as played at once."""

    def __init__(self) -> None:
        super().__init__(label="capture", capabilities=io.AudioOutputCapabilities(pause=False))
        self.frames: list[rtc.AudioFrame] = []
        self._segment = 0.0
        self._playing = False

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        if not self._playing:
            self._playing = True
            self.on_playback_started(created_at=time.time())
        self.frames.append(frame)
        self._segment += frame.duration

    def _finish(self, interrupted: bool) -> None:
        if self._playing:
            self._playing, played, self._segment = False, self._segment, 0.0
            self.on_playback_finished(playback_position=played, interrupted=interrupted)

    def flush(self) -> None:
        super().flush()
        self._finish(False)

    def clear_buffer(self) -> None:
        self._finish(True)
