"""The optional OpenAI-compatible LLM. Absent by default: callers must degrade explicitly."""

from __future__ import annotations

import json
import logging
from typing import Any

from .errors import UserError
from .settings import Settings

log = logging.getLogger(__name__)
CONFIGURE = "set ALPHAAVATAR_LLM_MODEL and ALPHAAVATAR_LLM_BASE_URL / OPENAI_BASE_URL (or OPENAI_API_KEY)"


class LLMFailed(UserError):
    """The LLM is not configured, or it could not be reached or used; the message says what to check.

    Callers that can go on without the LLM catch it and say so (a warning, a note); the others let it
    reach the client as a tool error."""


def llm_unavailable(what: str, instead: str = "") -> LLMFailed:
    """`what` (e.g. "profile_extract") needs an LLM and none is configured; `instead`: what to do without one."""
    return LLMFailed(f"{what} needs an LLM and none is configured: {CONFIGURE}." + (f" {instead}" if instead else ""))


def llm_failed(exc: BaseException) -> LLMFailed:
    """Any LLM client's failure as one sentence a person can act on, never echoing a key.

    Reads the status code and the kind of failure, so it serves openai's exceptions, those of the
    livekit-agents openai plugin (the agent) and httpx's alike; a ValueError is an unusable answer
    (`LLM.complete_json`)."""
    if isinstance(exc, LLMFailed):
        return exc
    status = getattr(exc, "status_code", None)
    kind = type(exc).__name__
    if status in (401, 403):
        why = "refused the API key: check ALPHAAVATAR_LLM_API_KEY / OPENAI_API_KEY"
    elif status == 404:
        why = "does not know this model or address: check ALPHAAVATAR_LLM_MODEL and ALPHAAVATAR_LLM_BASE_URL"
    elif status == 429:
        why = "is rate-limiting this key: wait a little, or raise the key's limit"
    elif isinstance(status, int) and status >= 500:
        why = f"had an error of its own (HTTP {status}): try again later"
    elif isinstance(status, int) and status >= 400:
        why = f"refused the request (HTTP {status}): check that the endpoint is OpenAI-compatible and has this model"
    elif "Timeout" in kind:
        why = "did not answer in time: check that the endpoint is up, or try again"
    elif "Connect" in kind:
        why = "could not be reached: check ALPHAAVATAR_LLM_BASE_URL / OPENAI_BASE_URL and that it is running"
    elif isinstance(exc, ValueError):
        why = "answered with something that could not be used (not the JSON asked for)"
    else:
        why = "failed unexpectedly; the server log has the details"
    return LLMFailed(f"The LLM {why}.")


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
