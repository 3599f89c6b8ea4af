"""Identity that settles: a provisional (voice-only) user becomes a known one without admin work.

Two ways in. The person names themselves and the LLM calls `confirm_identity(name)`: a provisional
speaker is renamed, or merged into the enrolled user of that name when the last identification
found them alike (a bare claim never hands anyone another person's memories). Or their face
matches an enrolled user with a confident ('known') decision while their voice is a provisional
user's: `turn.merge_provisional` says what then happens — auto merges, ask has the LLM ask first
(a line in the context block; a yes is `confirm_identity` with that name), off leaves it. An
'uncertain' decision never merges. A merge moves the persona user (voiceprint, face, profile:
`user_merge`), the memories with their history (`memory_reassign_user`) and the journal: the
agent's queued writes for the provisional user are delivered before the memories move.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from livekit.agents.llm import RawFunctionTool, ToolError, function_tool

from .contracts import (
    MEMORY_REASSIGN_USER,
    USER_LIST,
    USER_MERGE,
    USER_RENAME,
    UserPage,
    UserRef,
)
from .mcp_sessions import McpHub, ToolFailed, ToolUnavailable
from .remember import MemoryWriter
from .speaker import Speaker
from .speaking import SpeakerTracker

log = logging.getLogger(__name__)

CONFIRM = "confirm_identity"
CONFIRM_SCHEMA = {
    "name": CONFIRM,
    "description": "The person speaking told you their name (\"I'm Alice\") or said yes when asked if they "
                   "are someone: record who they are, so their memories follow them.",
    "parameters": {"type": "object", "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 100, "description": "The name they gave."}},
        "required": ["name"], "additionalProperties": False},
}


@dataclass
class Suggestion:
    """A face says the provisional user is this known one; waiting for the person's yes."""

    provisional: str
    known: str
    name: str | None


class Settler:
    """Renames and merges for one conversation; `confirm_identity` is its tool."""

    def __init__(self, hub: McpHub, speakers: SpeakerTracker, writer: MemoryWriter | None, mode: str):
        self.hub, self.speakers, self.writer, self.mode = hub, speakers, writer, mode
        self.suggested: Suggestion | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.tool: RawFunctionTool = function_tool(self._confirm, raw_schema=CONFIRM_SCHEMA)

    def matched(self, provisional: str, known: Speaker) -> None:
        """A face put a provisional voice with a known user (a confident decision)."""
        if self.mode == "off":
            return
        if self.mode == "ask":
            self.suggested = Suggestion(provisional, known.user_id, known.name)
            return
        task = asyncio.create_task(self._merge_logged(provisional, known.user_id))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def note(self) -> str | None:
        """The context line for 'ask': the LLM asks before anything moves."""
        s = self.suggested
        if s is None:
            return None
        return (f"the face matches {s.name or s.known} (user id {s.known}) but the voice is a new provisional user: "
                f"ask if they are {s.name or 'that person'}; on a yes call {CONFIRM} with that name")

    async def settled(self, within: float = 60.0) -> None:
        """Wait for merges under way (tests; shutdown)."""
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=within)

    async def _merge_logged(self, provisional: str, known: str) -> None:
        try:
            await self.merge(provisional, known)
        except (ToolUnavailable, ToolFailed) as exc:
            log.warning("merging provisional user %s into %s failed: %s", provisional, known, exc)

    async def merge(self, provisional: str, known: str) -> None:
        """Persona first (the provisional user ceases to exist), then the memories; journal first of all."""
        if self.writer is not None:
            await self.writer.flush(30)  # queued writes of the provisional user land, then move with it
        await self.hub.call_data(USER_MERGE, {"user_id": provisional, "into_user_id": known})
        if self.hub.has(MEMORY_REASSIGN_USER):
            await self.hub.call_data(MEMORY_REASSIGN_USER, {"user_id": provisional, "into_user_id": known})
        self.speakers.merged(provisional, known)
        log.info("provisional user %s merged into %s", provisional, known)

    async def _named(self, name: str) -> list[UserRef]:
        found: list[UserRef] = []
        cursor: str | None = None
        while True:
            args: dict[str, Any] = {"provisional": False, "limit": 100}
            if cursor:
                args["cursor"] = cursor
            page = await self.hub.call_view(USER_LIST, args, UserPage)
            found += [u for u in page.users if u.name.casefold() == name.casefold()]
            if not (cursor := page.next_cursor):
                return found

    async def _confirm(self, raw_arguments: dict[str, Any]) -> str:
        name = " ".join(str(raw_arguments.get("name") or "").split())
        speaker = self.speakers.speaker
        if not name:
            raise ToolError(f"{CONFIRM}: give the name the person said, e.g. {{\"name\": \"Alice\"}}")
        if speaker is None or self.speakers.fixed_user:
            raise ToolError(f"{CONFIRM}: this conversation's user is fixed; there is nobody to identify")
        try:
            s = self.suggested
            if s is not None and speaker.user_id in (s.provisional, s.known) and (s.name or "").casefold() == name.casefold():
                self.suggested = None
                await self.merge(s.provisional, s.known)
                return f"Confirmed: this is {s.name} (user id {s.known}); their memories are together now."
            if speaker.decision != "provisional":
                if (speaker.name or "").casefold() == name.casefold():
                    return f"Already known: this is {speaker.name}."
                raise ToolError(f"{CONFIRM}: the speaker was recognised as {speaker.name or speaker.user_id}; "
                                "a name said aloud does not change who they are")
            same = await self._named(name)
            if not same:
                await self.hub.call_data(USER_RENAME, {"user_id": speaker.user_id, "name": name})
                self.speakers.renamed(speaker.user_id, name)
                return f"Noted: this is {name} (user id {speaker.user_id}); I will know them by that name."
            alike = [u for u in same if u.user_id in speaker.resembles]
            if not alike:
                raise ToolError(f"{CONFIRM}: someone named {name} is already known, and this voice is not like theirs, "
                                "so nothing was merged: ask them for a surname or another name to tell them apart")
            await self.merge(speaker.user_id, alike[0].user_id)
            return f"Confirmed: this is {name} (user id {alike[0].user_id}); their memories are together now."
        except (ToolUnavailable, ToolFailed) as exc:
            raise ToolError(f"{CONFIRM}: {exc}") from None
