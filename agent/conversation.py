"""Each user turn paired with its reply, and remembered together (background, journaled)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from .turn import TurnHooks, TurnPrep


@dataclass
class _OpenTurn:
    """The user turn waiting for its reply, to be remembered together."""

    user_id: str | None
    text: str
    at: datetime
    present: list[str]
    remembered: bool = False


class Conversation:
    def __init__(self, hooks: TurnHooks):
        self.hooks = hooks
        self._open: _OpenTurn | None = None

    def user_said(self, text: str, prep: TurnPrep | None = None) -> None:
        """A user message joined the conversation: it waits for its reply. It goes to its speaker's
        memory (`prep.owner`), with who was present."""
        self.close_turn()
        owner = prep.owner if prep is not None else self.hooks.user_id
        present = prep.audience if prep is not None else self.hooks.audience(owner)
        self._open = _OpenTurn(owner, text, datetime.now(UTC), present)

    def unanswered(self, text: str, prep: TurnPrep) -> None:
        """An utterance not spoken to the avatar: remembered for its speaker, never answered."""
        self.close_turn()
        if text.strip():
            self.hooks.remember(prep.owner, text, "", datetime.now(UTC), prep.audience)

    def avatar_said(self, text: str) -> None:
        """The avatar replied: remember it with the turn it answers."""
        turn = self._open
        if turn is not None and not turn.remembered:
            self.hooks.remember(turn.user_id, turn.text, text, turn.at, turn.present)
            turn.remembered = True
        elif turn is not None:
            self.hooks.remember(turn.user_id, "", text, present=turn.present)
        else:
            self.hooks.remember(self.hooks.user_id, "", text, present=self.hooks.audience(self.hooks.user_id))

    def close_turn(self) -> None:
        """A user turn that never got a reply is still remembered."""
        turn, self._open = self._open, None
        if turn is not None and not turn.remembered and turn.text.strip():
            self.hooks.remember(turn.user_id, turn.text, "", turn.at, turn.present)
