"""Several participants' microphones as the session's one audio input: one person holds the floor.

The session has one VAD and one STT, so it hears one stream at a time. The first participant whose
audio turns loud holds the floor: only their frames reach the session until the agent has decided
their turn (`release`), or they have been quiet `QUIET_RELEASE_S`. Meanwhile the others' frames
wait in order (from a pre-roll before their first loud frame), so whoever spoke while another held
the floor is heard right after, whole. `holder` is the participant whose turn is being heard.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

import numpy as np
from livekit import rtc
from livekit.agents import utils
from livekit.agents.voice import io

LOUD = 300.0  # int16 RMS of a 10-50 ms frame with voice in it (speech is thousands, room noise tens)
PREROLL_S = 0.5  # kept before a waiting participant's first loud frame
QUIET_RELEASE_S = 5.0  # a holder this long quiet with no turn decided (a cough, a noise) lets go
KEEP_S = 30.0  # at most this much of a waiting participant's speech is kept


def loud(frame: rtc.AudioFrame) -> bool:
    samples = np.frombuffer(frame.data, dtype=np.int16).astype(np.float32)
    return bool(len(samples)) and float(np.sqrt((samples ** 2).mean())) > LOUD


class Floor(io.AudioInput):
    """The session's microphone, fed by each participant's own audio input, one speaker at a time."""

    def __init__(self) -> None:
        super().__init__(label="floor")
        self.holder: str | None = None
        self._out = utils.aio.Chan[rtc.AudioFrame]()
        self._readers: dict[str, asyncio.Task[None]] = {}
        self._waiting: dict[str, deque[rtc.AudioFrame]] = {}
        self._waited: dict[str, float] = {}  # seconds in each waiting queue
        self._spoke: dict[str, float] = {}  # a waiting participant -> when their first loud frame came
        self._quiet = 0.0  # seconds the holder has been quiet

    async def __anext__(self) -> rtc.AudioFrame:
        return await self._out.__anext__()

    @property
    def participants(self) -> list[str]:
        """Whose microphones are heard."""
        return list(self._readers)

    def add(self, identity: str, stream: io.AudioInput) -> None:
        """Hear this participant (their stream is read until it ends or they are removed)."""
        if identity in self._readers:
            raise ValueError(f"participant {identity!r} is heard already")
        self._waiting[identity], self._waited[identity] = deque(), 0.0
        self._readers[identity] = asyncio.create_task(self._read(identity, stream), name=f"floor:{identity}")

    def remove(self, identity: str) -> None:
        """They left: their stream is no longer read; the floor is free if they held it."""
        if (task := self._readers.pop(identity, None)) is not None:
            task.cancel()
        self._waiting.pop(identity, None)
        self._waited.pop(identity, None)
        self._spoke.pop(identity, None)
        if self.holder == identity:
            self.release()

    def release(self) -> None:
        """The holder's turn is decided: the floor goes to who spoke first meanwhile, with what they said."""
        self.holder, self._quiet = None, 0.0
        if self._spoke:
            identity = min(self._spoke, key=self._spoke.__getitem__)
            del self._spoke[identity]
            self.holder = identity
            self._flush(identity)

    async def aclose(self) -> None:
        for identity in list(self._readers):
            self.remove(identity)
        self._out.close()

    async def _read(self, identity: str, stream: io.AudioInput) -> None:
        with contextlib.suppress(StopAsyncIteration, utils.aio.ChanClosed):
            async for frame in stream:
                self._hear(identity, frame)
        self._readers.pop(identity, None)
        if self.holder == identity and not self._out.closed:
            self.release()

    def _hear(self, identity: str, frame: rtc.AudioFrame) -> None:
        voiced = loud(frame)
        if self.holder is None and voiced:
            self.holder = identity
            self._flush(identity)
        if self.holder == identity:
            self._out.send_nowait(frame)
            self._quiet = 0.0 if voiced else self._quiet + frame.duration
            if self._quiet >= QUIET_RELEASE_S:
                self.release()
            return
        queue = self._waiting[identity]
        queue.append(frame)
        self._waited[identity] += frame.duration
        if voiced and identity not in self._spoke:
            self._spoke[identity] = asyncio.get_running_loop().time()
        keep = KEEP_S if identity in self._spoke else PREROLL_S
        while len(queue) > 1 and self._waited[identity] - queue[0].duration >= keep:
            self._waited[identity] -= queue.popleft().duration

    def _flush(self, identity: str) -> None:
        queue = self._waiting[identity]
        while queue:
            self._out.send_nowait(queue.popleft())
        self._waited[identity] = 0.0
