"""profile_extract: the configured OpenAI-compatible LLM proposes profile patches, each with the
quote that supports it; proposals whose quote is not in the conversation are refused (no invented
facts), the rest are checked like any patch."""

from __future__ import annotations

import json
from typing import Any

from mcp_servers.core.llm import LLM

from .profile import FIELDS_HELP, Patch, Profile

SYSTEM = """You keep a typed profile of one user of a voice assistant. Read the conversation and propose
changes to this user's profile as JSON: {"patches": [{"op": "set" | "add" | "remove", "field": "...",
"value": ..., "confidence": 0.0-1.0, "evidence": "an exact quote from the conversation"}]}.
Rules: only what the user says (or plainly implies) about themselves; nothing about the assistant or
about other people except as the user's relationships; "set" replaces a one-value field, "add" adds to a
list, "remove" takes out what the user says is no longer true; the evidence must be copied word for word
from the conversation; if nothing is worth keeping, answer {"patches": []}.
""" + FIELDS_HELP


def _norm(text: str) -> str:
    return " ".join(text.casefold().split())


def supported(evidence: str | None, conversation: str) -> bool:
    """The evidence quote occurs in the conversation (case and spacing ignored)."""
    return bool(evidence and evidence.strip()) and _norm(evidence or "") in _norm(conversation)


async def propose(llm: LLM, profile: Profile, conversation: str) -> list[dict[str, Any]]:
    """The raw patch proposals of the LLM (ValueError if it does not answer with the JSON asked for)."""
    current = profile.model_dump(exclude={"user_id"}, exclude_none=True)
    user = (f"Current profile of {profile.name} (JSON):\n{json.dumps(current, ensure_ascii=False)[:8000]}\n\n"
            f"Conversation:\n{conversation}")
    answer = await llm.complete_json(SYSTEM, user)
    patches = answer.get("patches") if isinstance(answer, dict) else None
    if not isinstance(patches, list):
        raise ValueError('the LLM answer has no "patches" list')
    return [p for p in patches if isinstance(p, dict)][:50]


def as_patch(raw: dict[str, Any]) -> Patch:
    return Patch.model_validate(raw)
