"""The per-turn hooks: who is speaking, what we recall for them, what we remember after.

`TurnHooks.prepare()` runs at the end of a user turn. Speaker identification and recall run
together: recall is speculatively run for the previous speaker (the same person, most turns)
while the voice is identified, and re-run only when the speaker changed. In a voice turn both
start earlier, during the silence that ends the turn (`identify_early` when speech stops,
`prefetch` on the final transcript), so the turn mostly waits for nothing. Recall has a budget
(default 150 ms); a late result is dropped for this turn and logged, never awaited.
`remember()` queues the finished turn for memory; tool calls go to the tool scope.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import contracts as c
from .config import TurnConfig
from .contracts import Experience, ExperienceSearch, Identification, Memory, MemorySearch, Profile, VoiceMatch
from .hub import McpHub, ToolFailed, ToolUnavailable
from .identity import Settler, face_settles, resembles
from .remember import MemoryWriter
from .tools import ToolCall

log = logging.getLogger(__name__)

PREFETCH_KEEP = 8
STREAMED_KEEP_S = 30.0  # a turn is no longer than its audio buffer: an older streamed result is stale
PRESENT_SECONDS = 600.0  # a user who spoke this recently counts as present
UNRECORDED = (c.TOOL_CALL_RECORD, c.TOOL_EXPERIENCE_SEARCH)  # recording these would recurse


@dataclass
class Speaker:
    user_id: str
    name: str | None = None
    decision: str = "known"  # known | provisional | uncertain | unknown | given
    score: float | None = None
    provisional_voice: str | None = None  # a provisional user whose voice this is, by a confident face match
    resembles: tuple[str, ...] = ()  # users the voice or face came close to


@dataclass
class Recall:
    user_id: str | None
    memories: list[Memory] = field(default_factory=list)
    profile: dict[str, Any] | None = None  # the profile's values (`Profile.plain`), as the LLM reads it
    experience: list[Experience] = field(default_factory=list)  # past calls of tools for similar tasks
    late: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    ms: float = 0.0


@dataclass
class TurnPrep:
    speaker: Speaker | None
    recall: Recall | None
    identify_ms: float = 0.0
    total_ms: float = 0.0
    identified_early: bool = False  # identification started during the end-of-turn silence
    modality: str = "text"  # text | voice | video, set by the agent that heard the turn


def wav_base64(wav: bytes) -> str:
    return base64.b64encode(wav).decode("ascii")


def _result(task: asyncio.Task[Speaker | None] | None) -> Speaker | None:
    """The speaker a finished identification found (None if unfinished, failed or nobody)."""
    if task is None or not task.done() or task.cancelled() or task.exception() is not None:
        return None
    return task.result()


class _RecallCalls:
    """Recall calls for one user and text, started when the text was known; collected within a budget."""

    def __init__(self, user_id: str | None, calls: dict[str, asyncio.Task[c.View]]):
        self.user_id = user_id
        self.calls = calls
        self.started = time.perf_counter()

    def cancel(self) -> None:
        for task in self.calls.values():
            task.cancel()

    async def collect(self, budget_s: float) -> Recall:
        """What came back within `budget_s` from now; the rest is cancelled and logged as late."""
        result = Recall(self.user_id)
        if self.calls:
            _, pending = await asyncio.wait(self.calls.values(), timeout=max(budget_s, 0.0))
            for name, task in self.calls.items():
                if task in pending:
                    task.cancel()
                    result.late.append(name)
                    continue
                try:
                    data = task.result()
                except (ToolUnavailable, ToolFailed) as exc:
                    result.failed.append(name)
                    log.info("recall: %s failed: %s", name, exc)
                    continue
                if isinstance(data, MemorySearch):
                    result.memories = data.results
                elif isinstance(data, ExperienceSearch):
                    result.experience = data.results
                elif isinstance(data, Profile):
                    result.profile = data.plain() or None
        result.ms = (time.perf_counter() - self.started) * 1000
        if result.late:
            log.warning("recall: %s late (budget %.0f ms), dropped for this turn", ", ".join(result.late),
                        budget_s * 1000)
        return result


class TurnHooks:
    """State and hooks of one conversation (one agent session)."""

    def __init__(self, hub: McpHub, turn: TurnConfig, session_id: str, writer: MemoryWriter | None = None,
                 user_id: str | None = None, experience_limit: int = 0):
        self.hub = hub
        self.experience_limit = experience_limit  # past tool calls recalled per turn (0: none)
        self._seen: dict[str, tuple[Speaker, float]] = {}  # who spoke in this session, and when
        self.cfg = turn
        self.session_id = session_id
        self.writer = writer
        self.speaker: Speaker | None = Speaker(user_id, decision="given") if user_id else None
        self.fixed_user = user_id is not None
        self._prefetched: dict[tuple[str | None, str], _RecallCalls] = {}
        self._early: asyncio.Task[Speaker | None] | None = None
        self._streamed_at: float | None = None  # when identification started on streaming speech
        self.settler: Settler | None = None  # renames and merges provisional users (agent.identity)
        self._merged: dict[str, str] = {}  # provisional user -> the user it was merged into

    @property
    def user_id(self) -> str | None:
        return self.speaker.user_id if self.speaker else None

    # -- who is speaking -------------------------------------------------------------------
    async def identify(self, wav: bytes, image: bytes | None = None, create: bool = True) -> Speaker | None:
        """The speaker of this audio (and face, when a video frame is given): a known user, or a
        provisional one the persona server creates for a new voice (later turns of it match it)."""
        args: dict[str, Any] = {"audio": wav_base64(wav), "create_if_unknown": create}
        try:
            if image is not None and self.hub.has(c.IDENTIFY):
                args["image"] = base64.b64encode(image).decode("ascii")
                found = await self.hub.call_view(c.IDENTIFY, args, Identification)
            elif self.hub.has(c.SPEAKER_IDENTIFY):
                args["adapt"] = self.cfg.adapt_voiceprints
                found = Identification.of_voice(await self.hub.call_view(c.SPEAKER_IDENTIFY, args, VoiceMatch))
            else:
                return None
        except (ToolUnavailable, ToolFailed) as exc:
            log.warning("speaker identification failed: %s", exc)
            return None
        decision, score = found.decision, found.score
        alike = resembles(found)
        if created := found.created_user_id:
            log.info("new voice: provisional user %s", created)
            return Speaker(created, None, "provisional", score, resembles=alike)
        if settles := face_settles(found):  # a provisional voice with an enrolled face: that user, to merge
            provisional_voice, face = settles
            return Speaker(str(face.user_id), face.name, "known", score, provisional_voice, alike)
        if decision == "known" and found.user_id:
            provisional = bool(found.voice and found.voice.provisional)
            return Speaker(found.user_id, found.name, "provisional" if provisional else "known", score,
                           resembles=alike)
        # Uncertain, or unknown from too little speech to start a new user: keep who was speaking.
        if self.speaker is not None:
            return Speaker(self.speaker.user_id, self.speaker.name, decision, score, resembles=alike)
        return None

    # -- recall ----------------------------------------------------------------------------
    def _start_recall(self, user_id: str | None, text: str) -> _RecallCalls:
        calls: dict[str, asyncio.Task[c.View]] = {}
        if self.hub.has(c.MEMORY_SEARCH) and text.strip():
            args: dict[str, Any] = {"query": text[:2000], "limit": self.cfg.memory_limit}
            if user_id:
                args["user_id"] = user_id
            calls[c.MEMORY_SEARCH] = asyncio.create_task(self.hub.call_view(c.MEMORY_SEARCH, args, MemorySearch))
        if self.hub.has(c.PROFILE_GET) and user_id:
            calls[c.PROFILE_GET] = asyncio.create_task(self.hub.call_view(c.PROFILE_GET, {"user_id": user_id}, Profile))
        if self.experience_limit and self.hub.has(c.TOOL_EXPERIENCE_SEARCH) and text.strip():
            past: dict[str, Any] = {"task": text[:2000], "limit": self.experience_limit}
            if user_id:
                past["user_id"] = user_id
            calls[c.TOOL_EXPERIENCE_SEARCH] = asyncio.create_task(
                self.hub.call_view(c.TOOL_EXPERIENCE_SEARCH, past, ExperienceSearch))
        return _RecallCalls(user_id, calls)

    async def recall(self, user_id: str | None, text: str, budget_s: float | None = None) -> Recall:
        """memory_search + profile_get in parallel; whatever is not back within the budget is dropped."""
        budget_s = self.cfg.recall_budget_ms / 1000 if budget_s is None else budget_s
        return await self._start_recall(user_id, text).collect(budget_s)

    def prefetch(self, text: str) -> None:
        """Start recalling for a turn whose text is known before the turn ends (a final transcript
        during the end-of-turn silence, a line read ahead): the turn then only waits for what is
        still missing. The recall is for the voice identified early, if that is done already."""
        early = _result(self._early)
        user = early.user_id if early is not None else self.user_id
        if self.cfg.recall and (user, text) not in self._prefetched:
            self._prefetched[(user, text)] = self._start_recall(user, text)
            while len(self._prefetched) > PREFETCH_KEEP:  # transcripts that never became a turn
                self._prefetched.pop(next(iter(self._prefetched))).cancel()

    def identify_streaming(self, wav: bytes | None, image: bytes | None = None) -> None:
        """The first `stream_identify_s` seconds of speech are in: identify now, while the person is
        still talking, so that by the end of the turn recall is under way for the right user. A
        confident match stands for the whole turn; anything else (a new voice, uncertain, not back
        yet when speech stops) is decided again on the whole turn, and never starts a new user."""
        self._streamed_at = None
        self.forget_early()
        if wav is not None and self.identifies():
            self._early = asyncio.create_task(self.identify(wav, image, create=False))
            self._streamed_at = time.monotonic()

    def _streamed(self) -> bool:
        """A streamed identification is under way, or found a known user, in this turn."""
        if self._streamed_at is None or time.monotonic() - self._streamed_at >= STREAMED_KEEP_S:
            return False
        if self._early is not None and self._early.done():
            found = _result(self._early)
            return found is not None and found.decision in ("known", "provisional")  # a match (create=False)
        return True

    def _settled(self) -> bool:
        """Speech stopped: the streamed identification found a known user (else identify the whole turn)."""
        return self._streamed() and self._early is not None and self._early.done()

    def identify_early(self, wav: bytes | None, image: bytes | None = None) -> None:
        """Speech stopped: identify the voice now, during the silence that ends a turn, rather than
        after it. `prepare` takes this result unless `forget_early` said the speaker went on."""
        if self._settled():
            return  # identified while they spoke
        self._streamed_at = None
        self.forget_early()
        if wav is not None and self.identifies():
            self._early = asyncio.create_task(self.identify(wav, image))

    def forget_early(self) -> None:
        """The user spoke again: the turn's audio is longer than what was identified early (an
        identification from streaming speech stands)."""
        if self._streamed():
            return
        if self._early is not None and not self._early.done():
            self._early.cancel()
        self._early = None

    def identifies(self) -> bool:
        """Whether turns are identified by voice: a `speaker_identify` tool is there, and the user is not fixed."""
        return self.cfg.identify_speaker and not self.fixed_user and self.hub.has(c.SPEAKER_IDENTIFY)

    def needs_turn_audio(self) -> bool:
        """Whether `prepare` would identify from the turn's audio (and camera frame): not when an
        identification is already under way from `identify_early`, nor when turns are not identified.
        The caller can then skip encoding them."""
        return self._early is None and self.identifies()

    async def warm(self, within: float = 120.0) -> None:
        """Make the servers load their models before the first turn, so its budget is not spent
        on a cold start; recalls prefetched meanwhile finish too. Runs at session start, never
        inside a turn."""
        if self.cfg.recall:
            await self.recall(self.user_id, "hello", budget_s=within)
            tasks = [t for calls in self._prefetched.values() for t in calls.calls.values()]
            if tasks:
                await asyncio.wait(tasks, timeout=within)

    # -- the turn --------------------------------------------------------------------------
    async def prepare(self, text: str, wav: bytes | None = None, image: bytes | None = None) -> TurnPrep:
        """Identify the speaker (voice turns) and recall for them, in parallel, within the budgets."""
        started = time.perf_counter()
        budget = self.cfg.recall_budget_ms / 1000
        identify, self._early, self._streamed_at = self._early, None, None
        started_early = identify is not None
        if identify is None and wav is not None and self.identifies():
            identify = asyncio.create_task(self.identify(wav, image))
        early = _result(identify)
        if early is not None:  # identified during the end-of-turn silence
            self.speaker, identify = early, None
        guess = self.user_id
        # Recall for the likely speaker while identifying; a first voice turn has no one to guess.
        speculative: _RecallCalls | None = self._prefetched.pop((guess, text), None)
        if speculative is None and self.cfg.recall and (guess is not None or identify is None):
            speculative = self._start_recall(guess, text)
        if identify is not None:
            try:
                found = await asyncio.wait_for(asyncio.shield(identify), self.cfg.identify_budget_ms / 1000)
            except TimeoutError:
                found = None
                log.warning("speaker identification late (budget %.0f ms): keeping %s for this turn",
                            self.cfg.identify_budget_ms, guess)
                identify.add_done_callback(self._adopt_late)
            if found is not None:
                self.speaker = found
        identify_ms = (time.perf_counter() - started) * 1000
        recall: Recall | None = None
        if speculative is not None and self.user_id == guess:
            recall = await speculative.collect(budget - (time.perf_counter() - started))
        elif self.cfg.recall and self.user_id is not None:
            # The speaker changed (or was unknown): what we recalled belongs to someone else.
            if speculative is not None:
                speculative.cancel()
            remaining = max(budget - (time.perf_counter() - started), budget / 2)
            calls = self._prefetched.pop((self.user_id, text), None) or self._start_recall(self.user_id, text)
            recall = await calls.collect(remaining)
        if self.speaker is not None:
            self._seen[self.speaker.user_id] = (self.speaker, time.monotonic())
            if self.speaker.provisional_voice and self.settler is not None:
                self.settler.matched(self.speaker.provisional_voice, self.speaker)
        return TurnPrep(self.speaker, recall, identify_ms, (time.perf_counter() - started) * 1000, started_early)

    def present(self, within_s: float = PRESENT_SECONDS) -> list[Speaker]:
        """The users who spoke in this session lately, the most recent first."""
        now = time.monotonic()
        recent = [(at, who) for who, at in self._seen.values() if now - at <= within_s]
        return [who for _, who in sorted(recent, key=lambda r: -r[0])]

    def renamed(self, user_id: str, name: str) -> None:
        """A provisional speaker named themselves: they are that named user from now on."""
        for who in [self.speaker, *(seen for seen, _ in self._seen.values())]:
            if who is not None and who.user_id == user_id:
                who.name, who.decision = name, "known"

    def merged(self, provisional: str, known: str) -> None:
        """A provisional user was merged away: whoever spoke as them is the known user now."""
        self._merged[provisional] = known  # a turn still open under the old id is remembered for the new
        seen = self._seen.pop(provisional, None)
        if self.speaker is not None and self.speaker.user_id == provisional:
            self.speaker = Speaker(known, self.speaker.name, "known", self.speaker.score)
        if seen is not None and known not in self._seen:
            self._seen[known] = (Speaker(known, seen[0].name), seen[1])

    def _adopt_late(self, task: asyncio.Task[Speaker | None]) -> None:
        if not task.cancelled() and task.exception() is None and (found := task.result()) is not None:
            self.speaker = found

    # -- remember --------------------------------------------------------------------------
    def remember(self, user_id: str | None, user_text: str, reply: str, occurred_at: datetime | None = None) -> None:
        """Queue one finished turn for the user's memory (background, journaled)."""
        if self.writer is None or not self.cfg.remember or not self.hub.has(c.MEMORY_ADD):
            return
        messages = [{"role": "user", "content": user_text}] if user_text.strip() else []
        if reply.strip():
            messages.append({"role": "assistant", "content": reply})
        if not messages:
            return
        args: dict[str, Any] = {"messages": messages, "scope": "user", "session_id": self.session_id,
                                "occurred_at": (occurred_at or datetime.now(UTC)).isoformat()}
        if user_id:
            args["user_id"] = self._merged.get(user_id, user_id)
        self.writer.submit(c.MEMORY_ADD, args)

    def record_tool_call(self, call: ToolCall, task: str | None = None) -> None:
        """Queue a tool call and its outcome for the tool scope."""
        if self.writer is None or not self.cfg.record_tool_calls or call.tool in UNRECORDED:
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
        if self.writer is not None:
            with contextlib.suppress(Exception):
                await self.writer.aclose(within)
