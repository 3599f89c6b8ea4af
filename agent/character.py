"""The character, driven through the character server's tools.

State changes (listening / thinking / speaking), emotion tags found in the LLM stream and each
spoken utterance (its text and TTS audio, for lip-sync) become calls to `character_state`,
`character_express` and `character_speak`. Calls go out in order from one background task, so
a slow renderer never delays a turn; a failure is logged and the conversation goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from livekit import rtc
from livekit.agents.types import USERDATA_TIMED_TRANSCRIPT

from character_bridge.protocol import EMOTIONS
from character_bridge.tags import TagParser

from .audio import to_wav16k, wav_base64
from .config import CharacterConfig
from .contracts import CHARACTER_EXPRESS, CHARACTER_SPEAK, CHARACTER_STATE
from .hub import McpHub, ToolFailed, ToolUnavailable

log = logging.getLogger(__name__)

MIN_LIPSYNC_SECONDS = 1.0  # a lip-sync call covers at least this much speech (sentences, not words)

STATES = {"listening": "listening", "thinking": "thinking", "speaking": "speaking", "idle": "idle",
          "initializing": "idle", "away": "idle"}
TAG_INSTRUCTIONS = (
    "You have a visible character. To show a feeling, put one tag such as [happy] right before the "
    f"sentence it colours; tags: {', '.join(EMOTIONS)}. "
    "Tags are shown, never spoken; use them sparingly."
)


class CharacterLink:
    def __init__(self, hub: McpHub, cfg: CharacterConfig):
        self._hub = hub
        self.cfg = cfg
        self._queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._state: str | None = None

    @property
    def active(self) -> bool:
        return self.cfg.enabled and self._hub.has(CHARACTER_STATE)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="character")

    def parser(self) -> TagParser | None:
        """A tag parser for one LLM stream, or None when emotion tags are off."""
        return TagParser() if self.cfg.emotions else None

    def _send(self, tool: str, args: dict[str, Any]) -> None:
        if self.active and self._hub.has(tool):
            self._queue.put_nowait((tool, args))

    def state(self, agent_state: str) -> None:
        state = STATES.get(agent_state)
        if state is not None and state != self._state:
            self._state = state
            self._send(CHARACTER_STATE, {"state": state})

    def express(self, emotion: str, intensity: float = 1.0) -> None:
        self._send(CHARACTER_EXPRESS, {"emotion": emotion, "intensity": intensity})

    def speak(self, text: str, wav: bytes | None = None) -> None:
        if not text.strip() and wav is None:
            return
        args: dict[str, Any] = {"text": text}
        if wav is not None and self.cfg.lip_sync:
            args["audio"] = wav_base64(wav)
        self._send(CHARACTER_SPEAK, args)

    async def _run(self) -> None:
        while True:
            tool, args = await self._queue.get()
            try:
                await self._hub.call_data(tool, args)
            except (ToolUnavailable, ToolFailed) as exc:
                log.warning("character: %s failed: %s", tool, exc)
            finally:
                self._queue.task_done()

    async def drain(self, within: float = 5.0) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), within)

    async def aclose(self) -> None:
        await self.drain()
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class LipSync:
    """One reply's TTS audio, cut at sentence starts into pieces of at least `MIN_LIPSYNC_SECONDS`,
    each sent to the character with its text as soon as it is synthesized (a sentence starts at
    a frame that carries its timed transcript)."""

    def __init__(self, character: CharacterLink):
        self.character = character
        self._words, self._frames, self._seconds = "", list[rtc.AudioFrame](), 0.0

    def frame(self, frame: rtc.AudioFrame) -> None:
        starts = "".join(str(t) for t in frame.userdata.get(USERDATA_TIMED_TRANSCRIPT, []))
        if starts.strip() and self._seconds >= MIN_LIPSYNC_SECONDS:
            self._send(self._words)
        self._words += starts
        self._frames.append(frame)
        self._seconds += frame.duration

    def end(self, spoken: str) -> None:
        """The reply is synthesized; `spoken` is its whole text (for audio that carried no transcript)."""
        if self._frames:
            self._send(self._words if self._words.strip() else spoken)

    def _send(self, text: str) -> None:
        if self.character.active:  # else speak() drops it: do not resample the sentence for nothing
            self.character.speak(text, to_wav16k(self._frames) if self.character.cfg.lip_sync else None)
        self._words, self._frames, self._seconds = "", [], 0.0
