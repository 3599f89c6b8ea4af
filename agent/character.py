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
from typing import Any, Protocol

from livekit import rtc
from livekit.agents.types import USERDATA_TIMED_TRANSCRIPT

from character_bridge.protocol import EMOTIONS, ExpressionEvent, GazeEvent, SpeechEvent, StateEvent
from character_bridge.tags import TagParser

from .audio import to_wav16k, wav_base64
from .config import CharacterConfig
from .contracts import CHARACTER_EXPRESS, CHARACTER_GAZE, CHARACTER_SPEAK, CHARACTER_STATE
from .mcp_sessions import McpHub, ToolFailed, ToolUnavailable

log = logging.getLogger(__name__)

SEATS = (0.0, -0.45, 0.45, -0.8, 0.8)  # where the n-th person met sits, as the character's gaze x
MIN_LIPSYNC_SECONDS = 1.0  # a lip-sync call covers at least this much speech (sentences, not words)

STATES = {"listening": "listening", "thinking": "thinking", "speaking": "speaking", "idle": "idle",
          "initializing": "idle", "away": "idle"}
TAG_INSTRUCTIONS = (
    "You have a visible character. To show a feeling, put one tag such as [happy] right before the "
    f"sentence it colours; tags: {', '.join(EMOTIONS)}. "
    "Tags are shown, never spoken; use them sparingly."
)


class DataPublisher(Protocol):
    """What a LiveKit local participant offers for data messages (livekit.rtc.LocalParticipant)."""

    async def publish_data(self, payload: bytes | str, *, reliable: bool = True,
                           destination_identities: list[str] = ..., topic: str = "") -> None: ...


EVENTS: dict[str, Any] = {CHARACTER_STATE: StateEvent, CHARACTER_EXPRESS: ExpressionEvent,
                          CHARACTER_SPEAK: SpeechEvent, CHARACTER_GAZE: GazeEvent}


class CharacterLink:
    def __init__(self, hub: McpHub, cfg: CharacterConfig):
        self._hub = hub
        self.cfg = cfg
        self._queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._state: str | None = None
        self._seats: dict[str, float] = {}
        self._room: asyncio.Queue[bytes] | None = None  # events for the room's data channel
        self._room_task: asyncio.Task[None] | None = None

    @property
    def active(self) -> bool:
        return self.cfg.enabled and self._hub.has(CHARACTER_STATE)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="character")

    def parser(self) -> TagParser | None:
        """A tag parser for one LLM stream, or None when emotion tags are off."""
        return TagParser() if self.cfg.emotions else None

    def publish_to(self, participant: DataPublisher, topic: str) -> None:
        """Also publish every event on the room's data channel (`topic`), in the character
        protocol, so a front end in the room renders the character without a second connection."""
        self._room = asyncio.Queue()
        self._room_task = asyncio.create_task(self._publish(participant, topic), name="character-publish")

    async def _publish(self, participant: DataPublisher, topic: str) -> None:
        assert self._room is not None
        while True:
            payload = await self._room.get()
            try:
                await participant.publish_data(payload, reliable=True, topic=topic)
            except Exception as exc:  # a room that fails to send must not stop the conversation
                log.warning("character: publish failed: %r", exc)
            finally:
                self._room.task_done()

    def _send(self, tool: str, args: dict[str, Any]) -> None:
        if self._room is not None and self.cfg.enabled:
            event = EVENTS[tool](**{k: v for k, v in args.items() if k != "audio"})
            self._room.put_nowait(event.model_dump_json(exclude_none=True).encode())
        if self.active and self._hub.has(tool):
            self._queue.put_nowait((tool, args))

    def look_at(self, person: str) -> None:
        """Turn to the person the avatar answers: each one met keeps their own place."""
        x = self._seats.setdefault(person, SEATS[len(self._seats) % len(SEATS)])
        self._send(CHARACTER_GAZE, {"x": x, "y": 0.0})

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
            if self._room is not None:
                await asyncio.wait_for(self._room.join(), within)

    async def aclose(self) -> None:
        await self.drain()
        for task in (self._task, self._room_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


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
