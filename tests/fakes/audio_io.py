"""The session's speaker without a LiveKit room: keeps every frame it is given (tests/benches)."""

from __future__ import annotations

from agent.replay import PlayedAtOnce


class CapturedAudio(PlayedAtOnce):
    """The session's speaker: keeps every frame and reports each segment as played at once."""

    def __init__(self) -> None:
        super().__init__(keep=True)
