"""Who is being spoken to: does an utterance want the avatar's reply?

The cues, in order; the first that applies decides, and says so (`why`):
  name         the avatar's name (or one of `group.names`) is said
  other name   someone else present or known is named, not the avatar: people talking to each other
  alone        nobody else is present
  follow-up    a question right after the avatar answered this same person
  face         their face is turned to the camera (their camera sees them now)
  llm          in company with no cue, the LLM decides within `group.llm_budget_ms`
  in company   no cue, and no LLM decision in time: the avatar listens and stays quiet
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from livekit.agents import llm

from .config import GroupConfig
from .contracts import USER_LIST, UserPage
from .mcp_sessions import McpHub, ToolFailed, ToolUnavailable
from .presence import Person

log = logging.getLogger(__name__)

QUESTION_WORDS = ("what", "who", "whom", "whose", "when", "where", "why", "how", "which", "is", "are", "do",
                  "does", "did", "can", "could", "would", "will", "should", "shall", "may")
Judge = Callable[[str, str, list[str]], Awaitable[bool]]  # (utterance, speaker label, people present) -> to the avatar?


@dataclass
class Addressed:
    yes: bool
    why: str


def _said(name: str, text: str) -> bool:
    return bool(name.strip()) and re.search(rf"(?<!\w){re.escape(name.strip())}(?!\w)", text, re.IGNORECASE) is not None


def is_question(text: str) -> bool:
    words = re.findall(r"[a-z']+", text.casefold())
    return text.rstrip().endswith("?") or (bool(words) and words[0] in QUESTION_WORDS)


class Addressing:
    """The avatar's ear for being spoken to, in one conversation."""

    def __init__(self, avatar_name: str, cfg: GroupConfig, judge: Judge | None = None):
        self.names = [avatar_name, *cfg.names]
        self.cfg = cfg
        self.judge = judge if cfg.llm_judge else None
        self.known_names: set[str] = set()  # names of people we know (persona users), besides those present
        self.known_users: set[str] = set()  # their user ids
        self._answered: tuple[str, float] | None = None  # whom the avatar answered last, and when

    async def learn_names(self, hub: McpHub) -> None:
        """The names of the people persona knows (one page): naming one of them is talking to them."""
        if not hub.has(USER_LIST):
            return
        try:
            page = await hub.call_view(USER_LIST, {"provisional": False, "limit": 100}, UserPage)
        except (ToolUnavailable, ToolFailed) as exc:
            log.info("addressing: no names from persona: %s", exc)
            return
        self.known_names = {u.name for u in page.users if u.name}
        self.known_users = {u.user_id for u in page.users}

    def answered(self, user_id: str | None) -> None:
        """The avatar replied to this person now."""
        self._answered = (user_id, time.monotonic()) if user_id else None

    async def decide(self, text: str, speaker: Person | None, present: list[Person], facing: bool = False) -> Addressed:
        if not self.cfg.addressing:
            return Addressed(True, "addressing off")
        if any(_said(n, text) for n in self.names):
            return Addressed(True, "name")
        others = [p for p in present if speaker is None or p.key != speaker.key]
        own = (speaker.name or "").casefold() if speaker else ""
        named = sorted({n for n in [*(p.name for p in others if p.name), *self.known_names]
                        if n and n.casefold() != own and _said(n, text)})
        if named:
            return Addressed(False, f"other name: {', '.join(named)}")
        if not others:
            return Addressed(True, "alone")
        if speaker is not None and speaker.user_id and self._answered is not None \
                and self._answered[0] == speaker.user_id and time.monotonic() - self._answered[1] <= self.cfg.follow_up_s \
                and is_question(text):
            return Addressed(True, "follow-up")
        if facing:
            return Addressed(True, "face")
        if self.judge is not None:
            try:
                yes = await asyncio.wait_for(self.judge(text, speaker.label() if speaker else "someone",
                                                        [p.label() for p in others]), self.cfg.llm_budget_ms / 1000)
                return Addressed(yes, "llm")
            except TimeoutError:
                log.info("addressing: the LLM did not decide within %.0f ms", self.cfg.llm_budget_ms)
            except Exception as exc:  # a failing model must not stop the conversation; the cue decides
                log.warning("addressing: the LLM failed: %s", exc)
        return Addressed(False, "in company")


def llm_judge(model: llm.LLM, avatar_name: str) -> Judge:
    """The LLM as the judge of unclear cases: it sees the utterance and who is present, nothing else."""

    async def judge(text: str, speaker: str, others: list[str]) -> bool:
        ctx = llm.ChatContext()
        ctx.add_message(role="system", content=(
            f"You decide whether an utterance in a group conversation is spoken to the assistant {avatar_name} "
            "or to the other people. Answer with one word: yes (to the assistant) or no."))
        ctx.add_message(role="user", content=f"Present: {', '.join(others)}. {speaker} said: {text!r}")
        answer = ""
        async with model.chat(chat_ctx=ctx) as stream:
            async for chunk in stream:
                if chunk.delta is not None and chunk.delta.content:
                    answer += chunk.delta.content
        return answer.strip().casefold().startswith("yes")

    return judge
