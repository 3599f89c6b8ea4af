"""Who is speaking now: the speaker-identification state machine of one conversation.

A voice turn is identified as early as the audio allows. After `stream_identify_s` seconds of
speech the first seconds are identified while the person goes on talking (never creating a new
user); a confident match stands for the whole turn. When speech stops, anything else is decided
again on the whole turn's audio, during the silence that ends it. The turn then takes whatever is
under way (`take`). Events come in through one entry, `hear`; `state` says where it stands:

  idle       nothing under way
  streaming  identifying the first seconds of speech
  matched    the first seconds matched a known or provisional user: it stands for the turn
  ending     speech stopped: identifying the whole turn's audio
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Literal

import numpy as np
from livekit import rtc

from .audio import ID_RATE, wav_base64
from .config import GroupConfig, TurnConfig
from .contracts import SPEAKER_IDENTIFY
from .mcp_sessions import McpHub, ToolFailed, ToolUnavailable
from .presence import Presence
from .speaker import Speaker, identify

STREAMED_KEEP_S = 30.0  # a turn is no longer than its audio buffer: an older streamed result is stale
Event = Literal["speech_started", "first_seconds", "speech_stopped"]
State = Literal["idle", "streaming", "matched", "ending"]


def result(task: asyncio.Task[Speaker | None] | None) -> Speaker | None:
    """The speaker a finished identification found (None if unfinished, failed or nobody)."""
    if task is None or not task.done() or task.cancelled() or task.exception() is not None:
        return None
    return task.result()


class SpeakerTracker:
    """The speaker of one conversation and the identification under way for the current turn."""

    def __init__(self, hub: McpHub, cfg: TurnConfig, user_id: str | None = None, group: GroupConfig | None = None):
        self.hub, self.cfg = hub, cfg
        self.speaker: Speaker | None = Speaker(user_id, decision="given") if user_id else None
        self.fixed_user = user_id is not None
        self._task: asyncio.Task[Speaker | None] | None = None
        self._phase: Literal["idle", "streaming", "ending"] = "idle"
        self._tentative = False  # the identification under way neither creates a user nor adapts a voiceprint
        self._streamed_at = 0.0
        self.presence = Presence(group)
        self._merged: dict[str, str] = {}  # provisional user -> the user it was merged into

    @property
    def state(self) -> State:
        if self._task is None:
            return "idle"
        if self._phase != "streaming":
            return self._phase
        if time.monotonic() - self._streamed_at >= STREAMED_KEEP_S:
            return "idle"  # stale: it belongs to no turn any more
        if not self._task.done():
            return "streaming"
        found = result(self._task)
        return "matched" if found is not None and found.decision in ("known", "provisional") else "idle"

    def __repr__(self) -> str:
        who = f"{self.speaker.user_id} ({self.speaker.decision})" if self.speaker else "nobody"
        return f"<SpeakerTracker {self.state}, speaking: {who}>"

    def identifies(self) -> bool:
        """Whether turns are identified by voice: a `speaker_identify` tool is there, and the user is not fixed."""
        return self.cfg.identify_speaker and not self.fixed_user and self.hub.has(SPEAKER_IDENTIFY)

    def hear(self, event: Event, wav: bytes | None = None, image: bytes | None = None, tentative: bool = False) -> None:
        """The one entry: speech started (a turn goes on), its first seconds are in, or it stopped;
        `wav` (and `image`) is the turn's audio (and camera frame) so far. `tentative`: the turn may
        hold two voices, so when speech stops it is identified without creating a user or adapting a
        voiceprint (two people's voice must not become anyone's)."""
        state = self.state
        if event == "speech_started":
            if state not in ("streaming", "matched"):  # an identification from streaming speech stands
                self._drop()
        elif event == "first_seconds":
            self._drop()
            self._start(wav, image, phase="streaming")
        elif event == "speech_stopped" and state != "matched":  # else identified while they spoke
            self._drop()
            self._start(wav, image, phase="ending", tentative=tentative)

    def guess(self) -> Speaker | None:
        """Who is most likely speaking in this turn: what identification found already, else the last speaker."""
        return result(self._task) or self.speaker

    def busy(self) -> bool:
        """An identification was started for this turn (it may have finished)."""
        return self._task is not None

    def pending(self) -> asyncio.Task[Speaker | None] | None:
        """The identification under way for this turn (it may have finished)."""
        return self._task

    def one_voice(self) -> None:
        """The turn holds one voice after all: a tentative identification that named nobody is dropped,
        so the turn is identified anew and a new voice gets its provisional user."""
        if self._task is None or not self._task.done() or not self._tentative:
            return
        found = result(self._task)
        if found is None or found.decision == "unknown":
            self._drop()

    def needs_turn_audio(self) -> bool:
        """Whether the turn's end would identify from its audio: nothing under way, and turns are identified."""
        return self._task is None and self.identifies()

    def take(self, wav: bytes | None = None, image: bytes | None = None) -> asyncio.Task[Speaker | None] | None:
        """The turn ended: the identification under way (or one started now on `wav`); back to idle."""
        task, self._task, self._phase = self._task, None, "idle"
        if task is None and wav is not None and self.identifies():
            task = asyncio.create_task(self.identify(wav, image))
        return task

    def restore(self, task: asyncio.Task[Speaker | None]) -> None:
        """Give back a turn's identification taken for a split that did not happen (unless a new
        turn's identification has started meanwhile)."""
        if self._task is None:
            self._task, self._phase = task, "ending"
        else:
            task.cancel()

    def decided(self, found: Speaker | None) -> None:
        """The turn's identification finished: `found` speaks now (None keeps who was speaking)."""
        if found is not None:
            self.speaker = found

    def renamed(self, user_id: str, name: str) -> None:
        """A provisional speaker named themselves: they are that named user from now on."""
        if self.speaker is not None and self.speaker.user_id == user_id:
            self.speaker.name, self.speaker.decision = name, "known"
        self.presence.renamed(user_id, name)

    def merged(self, provisional: str, known: str) -> None:
        """A provisional user was merged away: whoever spoke as them is the known user now."""
        self._merged[provisional] = known  # a turn still open under the old id is remembered for the new
        self.presence.merged(provisional, known)
        if self.speaker is not None and self.speaker.user_id == provisional:
            self.speaker = Speaker(known, self.speaker.name, "known", self.speaker.score)

    def current_id(self, user_id: str) -> str:
        """The user id that stands for `user_id` now (the known user a provisional one was merged into)."""
        return self._merged.get(user_id, user_id)

    async def warm(self, within: float) -> None:
        """Have the persona server load its voice model before the first turn: a second of quiet
        noise, matched against nobody (never a new user, never adapting a voiceprint); its answer
        (no speech found) does not matter."""
        if self.identifies():
            noise = np.random.default_rng(0).normal(0, 30, ID_RATE).astype(np.int16)
            wav = rtc.AudioFrame(noise.tobytes(), ID_RATE, 1, len(noise)).to_wav_bytes()
            with contextlib.suppress(ToolFailed, ToolUnavailable, TimeoutError):
                await self.hub.call(SPEAKER_IDENTIFY, {"audio": wav_base64(wav), "create_if_unknown": False,
                                                       "adapt": False}, time_limit=within)

    async def identify(self, wav: bytes, image: bytes | None = None, create: bool = True,
                       adapt: bool = True) -> Speaker | None:
        return await identify(self.hub, self.cfg, wav, image, create, self.speaker, adapt)

    def _start(self, wav: bytes | None, image: bytes | None, phase: Literal["streaming", "ending"],
               tentative: bool = False) -> None:
        """Streaming speech is never a new user (the person goes on talking); a tentative turn is nobody's yet."""
        if wav is not None and self.identifies():
            create = phase == "ending" and not tentative
            self._task = asyncio.create_task(self.identify(wav, image, create=create, adapt=not tentative))
            self._phase, self._streamed_at, self._tentative = phase, time.monotonic(), tentative

    def _drop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._task, self._phase = None, "idle"
