"""The optional OpenAI-compatible LLM. Absent by default: callers must degrade explicitly."""

from __future__ import annotations

import json
import logging
from typing import Any

from .settings import Settings

log = logging.getLogger(__name__)


class LLM:
    """A thin async client for chat completions on any OpenAI-compatible endpoint."""

    def __init__(self, settings: Settings):
        from openai import AsyncOpenAI

        assert settings.llm_model
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else "unused"
        self.model = settings.llm_model
        self.base_url = settings.llm_base_url
        self.client = AsyncOpenAI(base_url=settings.llm_base_url, api_key=key, max_retries=2, timeout=60)

    async def complete(self, messages: list[dict[str, Any]], **kwargs: Any) -> str:
        resp = await self.client.chat.completions.create(model=self.model, messages=messages, **kwargs)  # type: ignore[arg-type]
        return resp.choices[0].message.content or ""

    async def complete_json(self, system: str, user: str) -> Any:
        """Ask for a JSON object; tolerate code fences around it. Raises ValueError on non-JSON."""
        text = await self.complete(
            [{"role": "system", "content": system}, {"role": "user", "content": user}],
            response_format={"type": "json_object"},
        )
        text = text.strip()
        if text.startswith("```"):
            text = text.strip("`").removeprefix("json").strip()
        try:
            return json.loads(text)
        except ValueError as exc:
            raise ValueError(f"the LLM did not answer with JSON: {text[:200]!r}") from exc


def get_llm(settings: Settings) -> LLM | None:
    """The configured LLM, or None when `ALPHAAVATAR_LLM_MODEL` is unset."""
    return LLM(settings) if settings.llm_enabled else None
