"""Fact extraction and reconciliation with an OpenAI-compatible LLM, using mem0's prompts.

mem0 2.2's own pipeline only ever adds facts; we keep its fact-extraction prompt and its
ADD / UPDATE / DELETE / NONE reconciliation prompt, and apply the decisions to our store, so a
contradicting fact updates the memory it contradicts instead of sitting beside it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Literal

from mcp_servers.core.llm import LLM
from mcp_servers.core.store import Hit

log = logging.getLogger(__name__)

Decision = tuple[Literal["ADD", "UPDATE", "DELETE"], Hit | None, str]


def _prompts() -> tuple[str, object]:
    from mem0.configs.prompts import FACT_RETRIEVAL_PROMPT, get_update_memory_messages

    return FACT_RETRIEVAL_PROMPT, get_update_memory_messages


class Extractor:
    def __init__(self, llm: LLM):
        self.llm = llm

    async def facts(self, conversation: str) -> list[str]:
        """The distinct facts worth remembering in a text or chat transcript."""
        system, _ = _prompts()
        answer = await self.llm.complete_json(system, f"Input:\n{conversation}")
        facts = answer.get("facts") if isinstance(answer, dict) else None
        if not isinstance(facts, list):
            raise ValueError(f"the LLM answered without a 'facts' list: {json.dumps(answer)[:200]}")
        return [str(f).strip() for f in facts if str(f).strip()]

    async def reconcile(self, existing: Sequence[Hit], facts: Sequence[str]) -> list[Decision]:
        """Ask the LLM what each new fact does to the stored memories nearest to it."""
        _, update_messages = _prompts()
        ids = {str(i): h for i, h in enumerate(existing)}
        old = [{"id": i, "text": h.payload["content"]} for i, h in ids.items()]
        prompt = update_messages(old, list(facts))  # type: ignore[operator]
        answer = await self.llm.complete_json("You manage a long-term memory. Answer in JSON only.", prompt)
        items = answer.get("memory") if isinstance(answer, dict) else None
        if not isinstance(items, list):
            raise ValueError(f"the LLM answered without a 'memory' list: {json.dumps(answer)[:200]}")
        decisions: list[Decision] = []
        for entry in items:
            if not isinstance(entry, dict):
                continue
            event = str(entry.get("event", "")).upper()
            text = str(entry.get("text", "")).strip()
            hit = ids.get(str(entry.get("id")))
            if event == "ADD" and text:
                decisions.append(("ADD", None, text))
            elif event == "UPDATE" and hit is not None and text and text != hit.payload["content"]:
                decisions.append(("UPDATE", hit, text))
            elif event == "DELETE" and hit is not None:
                decisions.append(("DELETE", hit, hit.payload["content"]))
            elif event in ("UPDATE", "DELETE") and hit is None:
                log.warning("the LLM named a memory that does not exist; ignored",
                            extra={"fields": {"id": entry.get("id"), "event": event}})
        return decisions
