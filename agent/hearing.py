"""What the avatar heard: each utterance with its speaker, who was present, and whether it was for
the avatar; a turn that held two voices is one utterance per voice.

The agent asks `whole` for a turn of one voice and `parts` for a turn split where the voice
changed. Every utterance goes to `on_heard` as it is decided (the replay writes one line for each);
one not spoken to the avatar is remembered for its speaker and never answered. Of a split turn,
every part spoken to the avatar is answered, one reply each, in the order spoken: the agent answers
the first at once, and `owed` keeps the others until the avatar has finished speaking.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from .addressing import Addressed, Addressing
from .conversation import Conversation
from .participant import vouched_parts
from .presence import KNOWN, Person
from .split import Part
from .turn import TurnHooks, TurnPrep

log = logging.getLogger(__name__)


@dataclass
class Heard:
    """One utterance the avatar heard: who said it, in front of whom, whether it was for the avatar."""

    text: str
    prep: TurnPrep
    addressed: Addressed
    reply: str | None = None
    within: tuple[float, float] | None = None  # a part of a two-voice turn: its seconds from the turn's start
    part: int = 0  # which part of its turn (0: the first, or the whole turn)


class Hearing:
    """The utterances of one conversation, decided one by one, and the answers still owed."""

    def __init__(self, hooks: TurnHooks, addressing: Addressing, conversation: Conversation):
        self.hooks, self.addressing, self.conversation = hooks, addressing, conversation
        self.on_heard: Callable[[Heard], None] | None = None  # every utterance heard, as it is decided
        self.current: Heard | None = None  # the utterance being answered: the LLM's words are its reply
        self.owed: list[Heard] = []  # a split turn's later parts spoken to the avatar, not answered yet

    def _speaking(self, prep: TurnPrep) -> Person | None:
        return next((p for p in self.hooks.speakers.presence.people() if prep.speaker_id and p.user_id == prep.speaker_id),
                    None)

    async def whole(self, text: str, prep: TurnPrep, facing: bool = False) -> Heard:
        """A turn of one voice, decided: for the avatar or not (then remembered, unanswered)."""
        presence = self.hooks.speakers.presence
        addressed = await self.addressing.decide(text, self._speaking(prep), presence.people(), facing)
        heard = Heard(text, prep, addressed)
        log.info("heard %s (%s), present: %s; addressed: %s (%s)", prep.speaker_id or "someone",
                 prep.speaker.decision if prep.speaker else "unknown", presence.describe(), addressed.yes, addressed.why)
        self._tell(heard)
        return heard

    async def parts(self, parts: list[tuple[Part, str]], claimed: str | None = None,
                    identity: str | None = None) -> list[Heard]:
        """A turn that held two voices: each part its speaker's own utterance, remembered for them only.
        On a room participant's stream (`identity`, who is `claimed`), their identity is the prior of
        the parts' voices. Returns the parts spoken to the avatar, in the order spoken."""
        voices = [part.speaker for part, _ in parts]
        if claimed is not None:
            voices = vouched_parts(voices, claimed)
        base = parts[0][0].start
        heard: list[Heard] = []
        for i, ((part, text), voice) in enumerate(zip(parts, voices, strict=True)):
            prep = self.hooks.part(voice)
            if identity is not None and voice is not None and voice.user_id == claimed and voice.decision in KNOWN:
                self.hooks.speakers.presence.link(identity, voice.user_id)
            addressed = await self.addressing.decide(text, self._speaking(prep), self.hooks.speakers.presence.people())
            heard.append(Heard(text, prep, addressed, within=(part.start - base, part.end - base), part=i))
        for h in heard:
            log.info("heard part %d: %s (%s); addressed: %s (%s)", h.part, h.prep.speaker_id or "someone",
                     h.prep.speaker.decision if h.prep.speaker else "unknown", h.addressed.yes, h.addressed.why)
            self._tell(h)
        return [h for h in heard if h.addressed.yes]

    def _tell(self, heard: Heard) -> None:
        if self.on_heard is not None:
            self.on_heard(heard)
        if not heard.addressed.yes:  # people talking to each other: listen, remember, stay quiet
            self.conversation.unanswered(heard.text, heard.prep)

    def forgo(self) -> None:
        """The conversation moved on before the owed answers: each is remembered, unanswered."""
        for heard in self.owed:
            self.conversation.unanswered(heard.text, heard.prep)
        self.owed = []
