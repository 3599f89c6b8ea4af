"""Status events of a turn, and the fillers spoken while the user waits.

Events (thinking, tool_start / tool_progress / tool_end / tool_error, finalizing) come from the
turn and from the MCP progress notifications of long tools. Each goes to the log, drives the
character (a thinking face while a tool runs, an awkward one when it fails) and is published on
a LiveKit data topic (`alphaavatar.status`) for any client to show. Fillers are short phrases
from `agent/fillers/<language>.yaml`, varied, never twice in a row, at most one every few
seconds; the avatar speaks them outside the chat history (see `AvatarAgent`). How chatty this
is follows the user's profile (`custom.status_verbosity`: quiet / normal / verbose).
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
import random
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel

from .character import CharacterLink, DataPublisher
from .config import StatusConfig

log = logging.getLogger(__name__)

FILLERS = Path(__file__).with_name("fillers")
FILLER_GAP_S = 4.0  # fillers closer together than this sound like a tic
Kind = Literal["thinking", "tool_start", "tool_progress", "tool_end", "tool_error", "finalizing"]
Verbosity = Literal["quiet", "normal", "verbose"]


class StatusEvent(BaseModel):
    v: int = 1
    kind: Kind
    at: float  # unix time, seconds
    turn: str | None = None
    tool: str | None = None
    message: str | None = None
    progress: float | None = None
    total: float | None = None
    filler: str | None = None  # what was spoken for it, if anything


@cache
def templates() -> dict[str, dict[str, Any]]:
    """Every filler file, by language code."""
    return {p.stem: yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted(FILLERS.glob("*.yaml"))}


def language_of(profile: dict[str, Any] | None, default: str) -> str:
    """The first of the user's languages we have fillers for, else `default`."""
    spoken = ((profile or {}).get("identity") or {}).get("languages") or []
    for name in spoken if isinstance(spoken, list) else [spoken]:
        for code, data in templates().items():
            if str(name).strip().casefold() in (data.get("names") or [code]):
                return code
    return default if default in templates() else "en"


class Status:
    """One conversation's status: emits events to their sinks and says when a filler is due."""

    def __init__(self, cfg: StatusConfig, character: CharacterLink):
        self.cfg = cfg
        self.character = character
        self.speak: Callable[[str], None] | None = None  # set by the avatar when it has a voice
        self.turn: str | None = None
        self.verbosity: Verbosity = cfg.verbosity
        self.language = language_of(None, cfg.language)
        self._last_filler: dict[str, str] = {}
        self._filler_at = -FILLER_GAP_S
        self._rng = random.Random()
        self._out: asyncio.Queue[StatusEvent] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def begin_turn(self, turn: str, profile: dict[str, Any] | None) -> None:
        """A new user turn: its id on every event, the speaker's verbosity and language (their
        profile wins over the config); fillers are spaced within a turn, not across turns."""
        if turn != self.turn:
            self.turn, self._filler_at = turn, -FILLER_GAP_S
        wanted = ((profile or {}).get("custom") or {}).get("status_verbosity")
        self.verbosity = wanted if wanted in ("quiet", "normal", "verbose") else self.cfg.verbosity
        self.language = language_of(profile, self.cfg.language)

    def publish_to(self, participant: DataPublisher) -> None:
        """Send every event on the room's data channel from now on."""
        self._task = asyncio.create_task(self._publish(participant), name="status-publish")

    async def _publish(self, participant: DataPublisher) -> None:
        while True:
            event = await self._out.get()
            try:
                await participant.publish_data(event.model_dump_json(exclude_none=True).encode(), reliable=True,
                                               topic=self.cfg.topic)
            except Exception as exc:  # a room that fails to send must not stop the conversation
                log.warning("status: publish failed: %s", exc)
            finally:
                self._out.task_done()

    def long(self, tool: str) -> bool:
        return any(fnmatch.fnmatchcase(tool, p) for p in self.cfg.long_tools)

    def emit(self, kind: Kind, **fields: Any) -> StatusEvent:
        event = StatusEvent(kind=kind, at=time.time(), turn=self.turn, **fields)
        if kind == "tool_start" and (self.long(event.tool or "") or self.verbosity == "verbose"):
            event.filler = self.say("long_tool" if self.long(event.tool or "") else "tool")
        elif kind == "tool_progress" and self.verbosity == "verbose":
            event.filler = self.say("progress")
        if kind in ("thinking", "finalizing"):
            self.character.state("thinking")
        elif kind == "tool_start":
            self.character.express("think", 0.6)
        elif kind == "tool_error":
            self.character.express("awkward", 0.6)
        log.info("status %s", event.model_dump_json(exclude_none=True, exclude={"v"}))
        if self._task is not None:
            self._out.put_nowait(event)
        return event

    def filler(self, kind: str) -> str | None:
        """A filler of this kind to speak now, or None (quiet user, no voice, one said just now)."""
        if not self.cfg.fillers or self.speak is None or self.verbosity == "quiet":
            return None
        if time.monotonic() - self._filler_at < FILLER_GAP_S:
            return None
        choices = templates().get(self.language, templates()["en"]).get(kind) or templates()["en"][kind]
        fresh = [c for c in choices if c != self._last_filler.get(kind)] or choices
        text = self._rng.choice(fresh)
        self._last_filler[kind] = text
        self._filler_at = time.monotonic()
        return str(text)

    def say(self, kind: str) -> str | None:
        """Speak a filler of this kind now, if one is due; returns what was said."""
        text = self.filler(kind)
        if text is not None and self.speak is not None:
            self.speak(text)
        return text

    async def aclose(self) -> None:
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._out.join(), 2.0)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
