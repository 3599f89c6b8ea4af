"""Speaking: turn text (with emotion tags) and optional audio into timed character events.

`plan_speech` builds one speech timeline (mouth envelope from the audio, or drawn from visemes
when there is none; visemes from eSpeak NG aligned to the voiced span) and places each tag's
expression at the time its text is spoken. `Performer` plays a plan on a hub: `state speaking`
and the timeline at once, each expression at its time, `state idle` at the end; `interrupt()`
cancels whatever is still to come.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass, field

import numpy as np

from . import lipsync
from .hub import Hub
from .protocol import FRAME_MS, ExpressionEvent, InterruptEvent, SpeechEvent, StateEvent
from .tags import strip_tags


@dataclass
class TimedExpression:
    t_ms: int
    event: ExpressionEvent


@dataclass
class SpeechPlan:
    utterance_id: str
    speech: SpeechEvent
    expressions: list[TimedExpression]
    source: str  # "audio" or "text"
    dropped_tags: list[str] = field(default_factory=list)


def plan_speech(text: str, audio: tuple[np.ndarray, int] | None = None, voice: str = "en-us",
                audio_ref: str | None = None) -> SpeechPlan:
    """A speech timeline for `text` (tags stripped), from `audio` (samples, rate) when given."""
    parsed = strip_tags(text)
    clean = " ".join(parsed.text.split())
    utterance_id = uuid.uuid4().hex[:12]
    if audio is not None:
        samples, rate = audio
        mouth = lipsync.envelope(samples, rate)
        duration_ms = len(mouth) * FRAME_MS
        start_ms, end_ms = lipsync.voiced_span(mouth)
        source = "audio"
    else:
        duration_ms = lipsync.estimate_duration_ms(clean) if clean else 0
        start_ms, end_ms = 0, duration_ms
        mouth = []
        source = "text"
    cues = lipsync.visemes(clean, end_ms - start_ms, start_ms) if clean else []
    if audio is None:
        mouth = lipsync.mouth_from_visemes(cues, duration_ms) if duration_ms else []
    speech = SpeechEvent(utterance_id=utterance_id, text=clean, mouth=mouth, visemes=cues,
                         duration_ms=duration_ms, audio_ref=audio_ref)
    raw_len = max(1, len(parsed.text))
    expressions = [
        TimedExpression(
            t_ms=start_ms + int((end_ms - start_ms) * min(tag.offset, raw_len) / raw_len),
            event=ExpressionEvent(utterance_id=utterance_id, emotion=tag.emotion, intensity=tag.intensity),  # type: ignore[arg-type]
        )
        for tag in parsed.tags
    ]
    return SpeechPlan(utterance_id, speech, expressions, source, parsed.dropped)


class Performer:
    """Plays speech plans on a hub, one utterance at a time."""

    def __init__(self, hub: Hub):
        self.hub = hub
        self.current: str | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def speak(self, plan: SpeechPlan) -> None:
        """Start an utterance now (interrupting the one playing, if any)."""
        if self.current is not None:
            self.interrupt("superseded by a new utterance")
        self.current = plan.utterance_id
        self.hub.publish(StateEvent(state="speaking", utterance_id=plan.utterance_id))
        self.hub.publish(plan.speech)
        loop = asyncio.get_running_loop()
        start = loop.time()
        for timed in plan.expressions:
            self._later(start + timed.t_ms / 1000.0, timed.event)
        self._later(start + plan.speech.duration_ms / 1000.0,
                    StateEvent(state="idle", utterance_id=plan.utterance_id), end_of=plan.utterance_id)

    def _later(self, at: float, event: ExpressionEvent | StateEvent, end_of: str | None = None) -> None:
        async def fire() -> None:
            await asyncio.sleep(max(0.0, at - asyncio.get_running_loop().time()))
            self.hub.publish(event)
            if end_of is not None and self.current == end_of:
                self.current = None

        task = asyncio.create_task(fire())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def interrupt(self, reason: str = "interrupted") -> tuple[str | None, int]:
        """Stop the current utterance: cancel its pending events, tell renderers to stop."""
        pending = [t for t in self._tasks if not t.done()]
        for task in pending:
            task.cancel()
        interrupted, self.current = self.current, None
        self.hub.publish(InterruptEvent(utterance_id=interrupted, reason=reason))
        if interrupted is not None:
            self.hub.publish(StateEvent(state="idle", utterance_id=interrupted))
        return interrupted, len(pending)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
