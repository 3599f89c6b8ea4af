"""A destructive call the LLM asks for runs only on the speaker's own yes, said in the conversation.

The server asks (MCP elicitation) before a destructive tool runs. For a call made on a speaker's
behalf, the agent never answers from the model: the first time, it answers no and the call comes
back to the LLM with the server's question for the person ("what exactly will happen"); the
person's next turn is heard here, and only a yes from that same person — by voice attribution or
the chat's user — grants that one question, once, for a short while. When the LLM calls again
with the same arguments, the server asks again and this time the grant says yes. Another voice's
yes, a yes the model claims, a changed argument or silence grant nothing.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

GRANT_S = 120.0  # a question, and then its yes, stays good this long
_YES = re.compile(r"\b(yes|yeah|yep|yup|sure|ok|okay|go ahead|do it|confirm|confirmed|please do|absolutely)\b", re.I)
_NO = re.compile(r"\b(no|nope|not|don't|dont|do not|never|stop|cancel|wait)\b|n't\b", re.I)


def is_yes(text: str) -> bool:
    """A plain yes: a yes word and no word of refusal or doubt."""
    return bool(_YES.search(text)) and not _NO.search(text)


@dataclass
class _Question:
    message: str
    at: float


class Consent:
    """The questions asked of each person in one conversation, and the yeses they gave."""

    def __init__(self) -> None:
        self._asked: dict[str, _Question] = {}
        self._granted: dict[str, _Question] = {}

    def answer(self, user_id: str, message: str) -> bool:
        """The agent's answer to the server's question for a call on `user_id`'s behalf: yes only
        if that person said yes to exactly this question since it was put to them."""
        now = time.monotonic()
        granted = self._granted.pop(user_id, None)
        if granted is not None and granted.message == message and now - granted.at < GRANT_S:
            return True
        self._asked[user_id] = _Question(message, now)
        return False

    def hear(self, user_id: str | None, text: str) -> None:
        """A turn of `user_id`: it answers the question last put to them (any turn closes it)."""
        if user_id is None:
            return
        question = self._asked.pop(user_id, None)
        now = time.monotonic()
        if question is not None and now - question.at < GRANT_S and is_yes(text):
            self._granted[user_id] = _Question(question.message, now)

    def waiting(self, user_id: str, since: float) -> str | None:
        """The question put to this person since `since` (time.monotonic) that their next turn answers."""
        question = self._asked.get(user_id)
        return question.message if question is not None and question.at >= since else None
