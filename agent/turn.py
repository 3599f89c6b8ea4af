"""The per-turn hooks: who is speaking, what we recall for them, what we remember after.

`TurnHooks.prepare()` runs at the end of a user turn. Speaker identification (agent.speaking)
and recall (agent.recall) run together: recall is speculatively run for the likely speaker (the
same person, most turns) while the voice is identified, and re-run only when the speaker changed.
In a voice turn both start earlier, during the silence that ends the turn (identification when
speech stops, `prefetch` on the final transcript), so the turn mostly waits for nothing. Recall
has a budget (default 150 ms); a late result is dropped for this turn and logged, never awaited.
`remember()` queues the finished turn for memory; tool calls go to the tool scope.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from . import contracts as c
from .config import BehaviorConfig, GroupConfig, TurnConfig
from .contracts import ExperienceSearch, Followup, Followups, MemorySearch, Profile
from .identity import Settler
from .mcp_sessions import McpHub
from .participant import vouched
from .presence import KNOWN
from .recall import Recall, RecallCalls
from .remember import MemoryWriter
from .speaker import Speaker
from .speaking import SpeakerTracker, result
from .tools import ToolCall

log = logging.getLogger(__name__)

PREFETCH_KEEP = 8
UNRECORDED = (c.TOOL_CALL_RECORD, c.TOOL_EXPERIENCE_SEARCH)  # recording these would recurse


@dataclass
class TurnPrep:
    speaker: Speaker | None
    recall: Recall | None
    identify_ms: float = 0.0
    total_ms: float = 0.0
    identified_early: bool = False  # identification started during the end-of-turn silence
    modality: str = "text"  # text | voice | video, set by the agent that heard the turn
    audience: list[str] = field(default_factory=list)  # everyone present (user ids, `someone`), the speaker first
    owner: str | None = None  # whose memory the turn goes to: None when we cannot tell in company

    @property
    def speaker_id(self) -> str | None:
        """Who spoke, as the voice says: known, provisional, or the closest voice when uncertain
        (None: nobody we can name). Whose memory the turn goes to is `owner`."""
        if self.speaker is not None and (self.speaker.decision in KNOWN or self.speaker.decision == "uncertain"):
            return self.speaker.user_id
        return self.owner


class TurnHooks:
    """State and hooks of one conversation (one agent session)."""

    def __init__(self, hub: McpHub, turn: TurnConfig, session_id: str, writer: MemoryWriter | None = None,
                 user_id: str | None = None, experience_limit: int = 0, group: GroupConfig | None = None,
                 behavior: BehaviorConfig | None = None):
        self.hub = hub
        self.behavior = behavior or BehaviorConfig()
        self._raised: set[str] = set()  # follow-ups brought up in this conversation
        self._turns: dict[str, int] = {}  # turns remembered per person since their last reflection
        self._quiet: asyncio.TimerHandle | None = None  # reflects once the conversation has been quiet a while
        self.experience_limit = experience_limit  # past tool calls recalled per turn (0: none)
        self.cfg = turn
        self.session_id = session_id
        self.writer = writer
        self.group = group or GroupConfig()
        self.speakers = SpeakerTracker(hub, turn, user_id, self.group)
        self._prefetched: dict[tuple[str | None, tuple[str, ...], str], RecallCalls] = {}
        self._warned_unfiltered = False
        self.settler: Settler | None = None  # renames and merges provisional users (agent.identity)

    @property
    def speaker(self) -> Speaker | None:
        return self.speakers.speaker

    @property
    def user_id(self) -> str | None:
        return self.speaker.user_id if self.speaker else None

    @property
    def fixed_user(self) -> bool:
        return self.speakers.fixed_user

    def identifies(self) -> bool:
        return self.speakers.identifies()

    def needs_turn_audio(self) -> bool:
        """Whether `prepare` would identify from the turn's audio (and camera frame): not when an
        identification is already under way, nor when turns are not identified. The caller can
        then skip encoding them."""
        return self.speakers.needs_turn_audio()

    async def identify(self, wav: bytes, image: bytes | None = None, create: bool = True) -> Speaker | None:
        return await self.speakers.identify(wav, image, create)

    # -- recall ----------------------------------------------------------------------------
    def accepts(self, tool: str, argument: str) -> bool:
        """Whether the connected server's `tool` takes `argument` (servers may predate it)."""
        found = next((t.tool for t in self.hub.tools() if t.tool.name == tool), None)
        return found is not None and argument in (found.input_schema.get("properties") or {})

    def audience(self, user_id: str | None) -> list[str]:
        """Who hears this turn's reply: everyone present, `user_id` (the speaker) first."""
        return self.speakers.presence.audience(user_id)

    def _start_recall(self, user_id: str | None, text: str, audience: list[str] | None = None) -> RecallCalls:
        """Recall for `user_id`, of what everyone in `audience` may hear. A server that cannot filter
        by audience gets no personal recall while anyone else is present: it fails closed."""
        audience = audience if audience is not None else self.audience(user_id)
        company = any(a != user_id for a in audience)
        personal = True
        extra: dict[str, Any] = {}
        if company:
            if self.accepts(c.MEMORY_SEARCH, "present"):
                extra["present"] = audience
            else:
                personal = False
                if not self._warned_unfiltered:
                    log.warning("memory_search cannot filter by who is present: no personal recall in company")
                    self._warned_unfiltered = True
        calls: dict[str, asyncio.Task[c.View]] = {}
        if self.hub.has(c.MEMORY_SEARCH) and text.strip() and (personal or not user_id):
            args: dict[str, Any] = {"query": text[:2000], "limit": self.cfg.memory_limit, **extra}
            if user_id:
                args["user_id"] = user_id
            calls[c.MEMORY_SEARCH] = asyncio.create_task(self.hub.call_view(c.MEMORY_SEARCH, args, MemorySearch))
        if self.hub.has(c.PROFILE_GET) and user_id and (not company or self.accepts(c.PROFILE_GET, "present")):
            profile: dict[str, Any] = {"user_id": user_id, **({"present": audience} if company else {})}
            calls[c.PROFILE_GET] = asyncio.create_task(self.hub.call_view(c.PROFILE_GET, profile, Profile))
        if self.behavior.followups and self.hub.has(c.FOLLOWUP_LIST) and user_id and (
                not company or self.accepts(c.FOLLOWUP_LIST, "present")):
            due = datetime.now(UTC) + timedelta(hours=self.behavior.followup_ahead_h)
            wanted: dict[str, Any] = {"user_id": user_id, "due_before": due.isoformat(), "limit": 20,
                                      **({"present": audience} if company else {})}
            calls[c.FOLLOWUP_LIST] = asyncio.create_task(self.hub.call_view(c.FOLLOWUP_LIST, wanted, Followups))
        if self.experience_limit and self.hub.has(c.TOOL_EXPERIENCE_SEARCH) and text.strip():
            past: dict[str, Any] = {"task": text[:2000], "limit": self.experience_limit}
            if user_id:
                past["user_id"] = user_id
            calls[c.TOOL_EXPERIENCE_SEARCH] = asyncio.create_task(
                self.hub.call_view(c.TOOL_EXPERIENCE_SEARCH, past, ExperienceSearch))
        return RecallCalls(user_id, calls, tuple(audience))

    async def recall(self, user_id: str | None, text: str, budget_s: float | None = None) -> Recall:
        """memory_search + profile_get in parallel; whatever is not back within the budget is dropped."""
        budget_s = self.cfg.recall_budget_ms / 1000 if budget_s is None else budget_s
        return await self._start_recall(user_id, text).collect(budget_s)

    def prefetch(self, text: str) -> RecallCalls | None:
        """Start recalling for a turn whose text is known before the turn ends (a final transcript
        during the end-of-turn silence, a line read ahead): the turn then only waits for what is
        still missing. The recall is for the voice identified early, if that is done already.
        Returns the recall under way for it (None when recall is off)."""
        guess = self.speakers.guess()
        user = guess.user_id if guess is not None else None
        key = (user, tuple(self.audience(user)), text)
        if self.cfg.recall and key not in self._prefetched:
            self._prefetched[key] = self._start_recall(user, text, list(key[1]))
            while len(self._prefetched) > PREFETCH_KEEP:  # transcripts that never became a turn
                self._prefetched.pop(next(iter(self._prefetched))).cancel()
        return self._prefetched.get(key)

    async def warm(self, within: float = 120.0) -> None:
        """Make the servers load their models before the first turn, so its budget is not spent
        on a cold start; recalls prefetched meanwhile finish too. Runs at session start, never
        inside a turn."""
        await self.speakers.warm(within)
        if self.cfg.recall:
            await self.recall(self.user_id, "hello", budget_s=within)
            tasks = [t for calls in self._prefetched.values() for t in calls.calls.values()]
            if tasks:
                await asyncio.wait(tasks, timeout=within)

    # -- the turn --------------------------------------------------------------------------
    async def prepare(self, text: str, wav: bytes | None = None, image: bytes | None = None,
                      claimed: str | None = None) -> TurnPrep:
        """Identify the speaker (voice turns) and recall for them, in parallel, within the budgets.
        `claimed`: the user a room participant is, whose voice must confirm it (`vouched`)."""
        started = time.perf_counter()
        budget = self.cfg.recall_budget_ms / 1000
        started_early = self.speakers.busy()
        identify = self.speakers.take(wav, image)
        if (early := result(identify)) is not None:  # identified during the end-of-turn silence
            self.speakers.decided(vouched(early, claimed) if claimed else early)
            identify = None
        guess = self.user_id
        heard = self.speaker
        before = self.speakers.presence.audience()  # who was here before this turn's voice: the company it is in
        if identify is None and heard is not None:
            self.speakers.presence.heard(heard)  # who speaks is known already: present now
        guessed = tuple(self.audience(guess))
        # Recall for the likely speaker while identifying; a first voice turn has no one to guess.
        speculative: RecallCalls | None = self._prefetched.pop((guess, guessed, text), None)
        if speculative is None and self.cfg.recall and (guess is not None or identify is None):
            speculative = self._start_recall(guess, text, list(guessed))
        late = False
        company = guess is None or any(a != guess for a in before)
        wait_ms = max(self.cfg.identify_budget_ms, self.group.identify_wait_ms) if company else self.cfg.identify_budget_ms
        if identify is not None:
            try:
                found = await asyncio.wait_for(asyncio.shield(identify), wait_ms / 1000)
            except TimeoutError:
                found, late = None, True
                log.warning("speaker identification late (budget %.0f ms): keeping %s for this turn",
                            wait_ms, guess)
                identify.add_done_callback(self._adopt_late)
            self.speakers.decided(vouched(found, claimed) if claimed else found)
        identify_ms = (time.perf_counter() - started) * 1000
        if identify is not None and not late:  # a late one says who was here when it comes (_adopt_late)
            self.speakers.presence.heard(self.speaker if self.speaker is not heard else None)
        if self.speaker is not None and self.speaker.face is not None:
            self.speakers.presence.seen_face(self.speaker.face, self.speaker.name)
        audience = self.audience(self.user_id)
        recall: Recall | None = None
        if speculative is not None and self.user_id == guess and speculative.audience == tuple(audience):
            recall = await speculative.collect(budget - (time.perf_counter() - started))
        elif self.cfg.recall and self.user_id is not None:
            # The speaker changed (or was unknown): what we recalled belongs to someone else.
            if speculative is not None:
                speculative.cancel()
            remaining = max(budget - (time.perf_counter() - started), budget / 2)
            calls = (self._prefetched.pop((self.user_id, tuple(audience), text), None)
                     or self._start_recall(self.user_id, text, audience))
            recall = await calls.collect(remaining)
        if self.speaker is not None:
            if self.speaker.provisional_voice and self.settler is not None:
                self.settler.matched(self.speaker.provisional_voice, self.speaker)
        owner, speaker = self.user_id, self.speaker
        if speaker is not None and late and company:  # a guess in company is no attribution
            speaker = Speaker(speaker.user_id, speaker.name, "unknown", resembles=speaker.resembles)
        if speaker is not None and speaker.decision not in KNOWN and (claimed or any(a != owner for a in before)):
            owner = None  # unsure who spoke, in company or on a participant's stream: nobody's memory gets it
        return TurnPrep(speaker, recall, identify_ms, (time.perf_counter() - started) * 1000, started_early,
                        audience=audience, owner=owner)

    def part(self, speaker: Speaker | None) -> TurnPrep:
        """One voice's part of a turn that held two: that voice speaks now and is present. Two voices
        are company: only a sure voice (known or provisional) owns the part, for its memory."""
        self.speakers.decided(speaker)
        self.speakers.presence.heard(speaker)
        user = speaker.user_id if speaker is not None else None
        owner = user if speaker is not None and speaker.decision in KNOWN else None
        return TurnPrep(speaker, None, modality="voice", audience=self.audience(user), owner=owner)

    def present(self) -> list[Speaker]:
        return self.speakers.presence.present()

    def _adopt_late(self, task: asyncio.Task[Speaker | None]) -> None:
        if not task.cancelled() and task.exception() is None and (found := task.result()) is not None:
            self.speakers.decided(found)
            self.speakers.presence.heard(found)

    # -- remember --------------------------------------------------------------------------
    def remember(self, user_id: str | None, user_text: str, reply: str, occurred_at: datetime | None = None,
                 present: list[str] | None = None) -> None:
        """Queue one finished turn for the user's memory (background, journaled), with who was
        present to hear it (which decides who may hear it again)."""
        if self.writer is None or not self.behavior.remember or not self.hub.has(c.MEMORY_ADD):
            return
        if user_id is None and present and self.speaker is not None:
            return  # in company and unsure who spoke: nobody's memory gets it
        messages = [{"role": "user", "content": user_text}] if user_text.strip() else []
        if reply.strip():
            messages.append({"role": "assistant", "content": reply})
        if not messages:
            return
        args: dict[str, Any] = {"messages": messages, "scope": "user", "session_id": self.session_id,
                                "occurred_at": (occurred_at or datetime.now(UTC)).isoformat()}
        if user_id:
            args["user_id"] = self.speakers.current_id(user_id)
        if present and self.accepts(c.MEMORY_ADD, "present"):
            args["present"] = [self.speakers.current_id(p) for p in present]
        self.writer.submit(c.MEMORY_ADD, args)
        if user_id:
            self._turns[user_id] = self._turns.get(user_id, 0) + 1
            if self.behavior.reflect_every and self._turns[user_id] >= self.behavior.reflect_every:
                self._reflect(user_id)
        self._wait_for_quiet()

    def _wait_for_quiet(self) -> None:
        """(Re)start the wait after which a quiet conversation reflects (`behavior.reflect_idle_s`)."""
        if self._quiet is not None:
            self._quiet.cancel()
        if self.behavior.reflect_idle_s and self.behavior.reflect != "off":
            self._quiet = asyncio.get_running_loop().call_later(self.behavior.reflect_idle_s, self._reflect_pending)

    def _reflect_pending(self) -> None:
        """Reflect for everyone remembered for since their last reflection."""
        for user in [u for u, n in self._turns.items() if n]:
            self._reflect(user)

    def _reflect(self, user_id: str) -> None:
        """Queue a reflection on a person's memories (after their turns, which the queue sends first)."""
        self._turns[user_id] = 0
        if self.writer is not None and self.behavior.reflect != "off" and self.hub.has(c.MEMORY_REFLECT):
            self.writer.submit(c.MEMORY_REFLECT, {"user_id": self.speakers.current_id(user_id)})

    def due(self, followups: list[Followup]) -> list[Followup]:
        """The follow-ups to bring up in this turn: of the kinds configured, not raised before, the
        soonest first, at most as many as configured."""
        fresh = [f for f in followups if f.kind in self.behavior.followup_kinds and f.id not in self._raised]
        return fresh[: self.behavior.followups_per_turn]

    def raised(self, followups: list[Followup]) -> None:
        """These follow-ups reached the LLM: marked raised, so no later turn or conversation raises them again."""
        for f in followups:
            if f.id in self._raised:
                continue
            self._raised.add(f.id)
            if self.writer is not None and self.hub.has(c.FOLLOWUP_UPDATE):
                self.writer.submit(c.FOLLOWUP_UPDATE, {"followup_id": f.id, "status": "raised"})

    def record_tool_call(self, call: ToolCall, task: str | None = None) -> None:
        """Queue a tool call and its outcome for the tool scope."""
        if self.writer is None or not self.behavior.record_tool_calls or call.tool in UNRECORDED:
            return
        if not self.hub.has(c.TOOL_CALL_RECORD):
            return
        args: dict[str, Any] = {"tool": call.tool, "arguments": call.arguments, "outcome": call.outcome[:4000],
                                "success": call.success, "latency_ms": round(call.latency_ms, 2),
                                "session_id": self.session_id}
        if task:
            args["task"] = task[:2000]
        if self.user_id:
            args["user_id"] = self.user_id
        self.writer.submit(c.TOOL_CALL_RECORD, args)

    async def aclose(self, within: float = 10.0) -> None:
        """The conversation ended: reflect for everyone it remembered for (`behavior.reflect`), then flush."""
        if self._quiet is not None:
            self._quiet.cancel()
        if self.behavior.reflect == "session_end":
            self._reflect_pending()
        if self.writer is not None:
            with contextlib.suppress(Exception):
                await self.writer.aclose(within)
