"""Fillers for a slow model: a short phrase spoken when the first token is late.

The reply has no audio yet (its synthesis starts with its first text), so the filler goes
straight to the session's audio output as a segment of its own — interrupted like any speech,
never in the chat history. Only a session with a voice has fillers.
"""

from __future__ import annotations

import asyncio
from typing import Any

from livekit.agents import AgentSession

from .status import Status


class Fillers:
    def __init__(self, status: Status, after_s: float):
        self.status = status
        self.after_s = after_s
        self.session: AgentSession | None = None
        self._spoken = False  # a filler is under way (it is then left to finish)
        self._task: asyncio.Task[None] | None = None  # the request waiting for its first token
        self._held: asyncio.Task[None] | None = None  # a task nobody references may vanish mid-filler

    def enable(self, session: AgentSession) -> None:
        """The session speaks: tool fillers and slow-model fillers are on."""
        self.session = session
        self.status.speak = self._say

    def _say(self, text: str) -> None:
        """Speak while a tool runs: interruptible, and not part of the conversation."""
        if self.session is not None:
            self.session.say(text, add_to_chat_ctx=False, allow_interruptions=True)

    def start(self) -> None:
        """An LLM request starts: a filler follows if no token comes within `after_s`."""
        self._task = self._held = asyncio.create_task(self._if_slow()) if self.status.speak is not None else None

    def first_token(self) -> None:
        """A token came (or the stream ended): nobody waits any more; a filler under way finishes."""
        if self._task is not None and not self._spoken:
            self._task.cancel()
        self._task = None

    @property
    def waiting(self) -> bool:
        return self._task is not None

    async def _if_slow(self) -> None:
        await asyncio.sleep(self.after_s)
        session = self.session
        if session is None:
            return
        tts, audio = session.tts, session.output.audio
        if tts is None or audio is None or (filler := self.status.filler("thinking")) is None:
            return
        self._spoken = True
        try:
            await self._play(filler, tts, audio)
        finally:
            self._spoken = False

    async def _play(self, filler: str, tts: Any, audio: Any) -> None:
        self.status.emit("thinking", message="waiting for the first token", filler=filler)
        async with tts.synthesize(filler) as stream:
            frames = [synthesized.frame async for synthesized in stream]
        for frame in frames:  # whole, so that the reply's first frame cannot land inside it
            await audio.capture_frame(frame)
        audio.flush()
