"""What we recall for a turn: memory_search, profile_get, past tool calls and due follow-ups, within a budget.

Calls start as soon as the text (and the likely speaker) is known; the turn collects what came
back within its budget and drops the rest (logged, never awaited).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from . import contracts as c
from .contracts import Experience, ExperienceSearch, Followup, Followups, Memory, MemorySearch, Profile
from .mcp_sessions import ToolFailed, ToolUnavailable

log = logging.getLogger(__name__)


@dataclass
class Recall:
    user_id: str | None
    memories: list[Memory] = field(default_factory=list)
    profile: dict[str, Any] | None = None  # the profile's values (`Profile.plain`), as the LLM reads it
    experience: list[Experience] = field(default_factory=list)  # past calls of tools for similar tasks
    followups: list[Followup] = field(default_factory=list)  # due, and audible to everyone present
    late: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    ms: float = 0.0


class RecallCalls:
    """Recall calls for one user and text, started when the text was known; collected within a budget."""

    def __init__(self, user_id: str | None, calls: dict[str, asyncio.Task[c.View]], audience: tuple[str, ...] = ()):
        self.user_id = user_id
        self.audience = audience  # who was present: what was recalled is what they all may hear
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
                elif isinstance(data, Followups):
                    result.followups = data.results
        result.ms = (time.perf_counter() - self.started) * 1000
        if result.late:
            log.warning("recall: %s late (budget %.0f ms), dropped for this turn", ", ".join(result.late),
                        budget_s * 1000)
        return result
