"""Each user turn paired with its reply, and remembered together (background, journaled)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from .turn import TurnHooks


@dataclass
class _OpenTurn:
    """The user turn waiting for its reply, to be remembered together."""

    user_id: str | None
    text: str
    at: datetime
    remembered: bool = False


class Conversation:
    def __init__(self, hooks: TurnHooks):
        self.hooks = hooks
        self._open: _OpenTurn | None = None

    def user_said(self, text: str) -> None:
        """A user message joined the conversation: it waits for its reply."""
        self.close_turn()
        self._open = _OpenTurn(self.hooks.user_id, text, datetime.now(UTC))

    def avatar_said(self, text: str) -> None:
        """The avatar replied: remember it with the turn it answers."""
        turn = self._open
        if turn is not None and not turn.remembered:
            self.hooks.remember(turn.user_id, turn.text, text, turn.at)
            turn.remembered = True
        else:
            self.hooks.remember(turn.user_id if turn else self.hooks.user_id, "", text)

    def close_turn(self) -> None:
        """A user turn that never got a reply is still remembered."""
        turn, self._open = self._open, None
        if turn is not None and not turn.remembered and turn.text.strip():
            self.hooks.remember(turn.user_id, turn.text, "", turn.at)
