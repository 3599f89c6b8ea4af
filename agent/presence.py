"""Who is present: the people heard in this conversation lately, the most recent first."""

from __future__ import annotations

import time

from .speaker import Speaker

PRESENT_SECONDS = 600.0  # a user who spoke this recently counts as present


class Presence:
    def __init__(self) -> None:
        self._seen: dict[str, tuple[Speaker, float]] = {}  # who spoke in this session, and when

    def heard(self, speaker: Speaker) -> None:
        self._seen[speaker.user_id] = (speaker, time.monotonic())

    def present(self, within_s: float = PRESENT_SECONDS) -> list[Speaker]:
        """The users who spoke in this session lately, the most recent first."""
        now = time.monotonic()
        recent = [(at, who) for who, at in self._seen.values() if now - at <= within_s]
        return [who for _, who in sorted(recent, key=lambda r: -r[0])]

    def renamed(self, user_id: str, name: str) -> None:
        if (seen := self._seen.get(user_id)) is not None:
            seen[0].name, seen[0].decision = name, "known"

    def merged(self, provisional: str, known: str) -> None:
        seen = self._seen.pop(provisional, None)
        if seen is not None and known not in self._seen:
            self._seen[known] = (Speaker(known, seen[0].name), seen[1])
