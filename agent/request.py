"""What one LLM request of a turn carries besides the stored history: the turn's context block right
after the user's message, the camera frames of the moment, the follow-ups due; and only the history
that everyone present now heard when it was said (the rule for memories 'present' at the time,
applied to the conversation's own history). Nothing of it is stored: each request is built anew.
"""

from __future__ import annotations

from collections.abc import Iterable

from livekit.agents import llm

from .config import ContextConfig
from .context import followup_line, render
from .contracts import Followup
from .participant import ParticipantView
from .presence import KNOWN
from .turn import TurnHooks, TurnPrep


class TurnRequest:
    """Builds each LLM request of a conversation from its turn's preparation."""

    def __init__(self, cfg: ContextConfig, hooks: TurnHooks, view: ParticipantView):
        self.cfg, self.hooks, self.view = cfg, hooks, view
        self._heard_by: dict[str, frozenset[str]] = {}  # chat message id -> who was present when it was said
        self._images: dict[str, list[str]] = {}
        self._due: dict[str, list[Followup]] = {}  # the user message's due follow-ups, for all its requests

    def heard(self, message_id: str, audience: Iterable[str]) -> None:
        """A chat message was said in front of these people (user ids, `someone`)."""
        self._heard_by[message_id] = frozenset(audience)

    def compose(self, chat_ctx: llm.ChatContext, index: int, prep: TurnPrep) -> None:
        """Put the turn's context right after its user message (at `index`), in this request only."""
        message = chat_ctx.items[index]
        assert isinstance(message, llm.ChatMessage)
        self.heard(message.id, prep.audience)
        index = self._only_for(chat_ctx, frozenset(prep.audience), index)
        profile = prep.recall.profile if prep.recall else None
        known_zone = ((profile or {}).get("identity") or {}).get("time_zone")
        images = self._images.get(message.id)
        if images is None:  # sampled once per turn; the turn's follow-up requests carry the same frames
            images = self.view.frames()
            self._images = {message.id: images}  # this turn's only: earlier turns' frames are never resent
        if images:
            chat_ctx.items[index] = message.model_copy(update={
                "content": [*message.content, *(llm.ImageContent(image=url) for url in images)]})
        due = self._due.get(message.id)
        if due is None:  # chosen once per turn (the turn's later requests carry the same), for a sure voice only
            sure = prep.speaker is not None and prep.speaker.decision in KNOWN
            due = self.hooks.due(prep.recall.followups) if prep.recall and sure else []
            self._due = {message.id: due}
        block = render(self.cfg, prep, prep.modality, self.hooks.present(), self.view.timezone() or known_zone,
                       sight=self.view.sight_line(len(images)),
                       identity=self.hooks.settler.note() if self.hooks.settler else None, followups=due)
        chat_ctx.items.insert(index + 1, llm.ChatMessage(role="system", content=[block]))
        shown = set(block.splitlines())
        self.hooks.raised([f for f in due if followup_line(f) in shown])

    def _only_for(self, chat_ctx: llm.ChatContext, audience: frozenset[str], index: int) -> int:
        """Leave out of this request what was said before someone present now was there to hear it;
        returns the new index of the user message at `index`."""
        keep = [(i, it) for i, it in enumerate(chat_ctx.items)
                if it.id not in self._heard_by or audience <= self._heard_by[it.id]]
        if len(keep) == len(chat_ctx.items):
            return index
        chat_ctx.items[:] = [it for _, it in keep]
        return next(n for n, (i, _) in enumerate(keep) if i == index)
