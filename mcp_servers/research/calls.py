"""How we call a paid provider: a per-process rate limit, retries with back-off on 429/5xx and
time-outs, a TTL cache keyed by the normalised request, and a per-research budget."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from aiolimiter import AsyncLimiter
from cachetools import TTLCache
from tavily import errors as tavily_errors
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from mcp_servers.core.errors import UserError

from .config import ResearchSettings

log = logging.getLogger(__name__)
T = TypeVar("T")


class BudgetExhausted(UserError):
    """A research spent every provider call it was allowed."""


@dataclass
class Budget:
    """Provider calls one research may make (cache hits are free)."""

    limit: int
    used: int = 0

    def spend(self) -> None:
        if self.used >= self.limit:
            raise BudgetExhausted(
                f"The budget of {self.limit} provider calls for this research is spent; raise `budget` "
                "to search further."
            )
        self.used += 1


@dataclass
class CallStats:
    calls: int = 0
    retries: int = 0
    cache_hits: int = 0


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def transient(exc: BaseException) -> bool:
    """Worth another try: rate limited (429), a server error (5xx), a time-out or a dropped connection."""
    if isinstance(exc, tavily_errors.UsageLimitExceededError | tavily_errors.TimeoutError):
        return True
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code == 429 or exc.response.status_code >= 500
    return isinstance(exc, httpx.TransportError)


class ProviderCalls:
    """Shared by every research of the process: one rate limiter and one cache."""

    def __init__(self, settings: ResearchSettings):
        self.settings = settings
        self.limiter = AsyncLimiter(settings.rate_per_s, 1.0)
        self.cache: TTLCache[str, Any] = TTLCache(settings.cache_size, settings.cache_ttl_s or 1e-9)

    @staticmethod
    def key(op: str, query: str, options: dict[str, Any]) -> str:
        return json.dumps([op, normalise(query), options], sort_keys=True, default=str)

    def cached(self, key: str) -> Any | None:
        return self.cache.get(key) if self.settings.cache_ttl_s > 0 else None

    async def call(
        self,
        fn: Callable[[], Awaitable[T]],
        *,
        key: str | None = None,
        budget: Budget | None = None,
        stats: CallStats | None = None,
    ) -> T:
        """`fn()` once (plus retries), through cache, budget and rate limit."""
        stats = stats if stats is not None else CallStats()
        if key is not None:
            hit = self.cached(key)
            if hit is not None:
                stats.cache_hits += 1
                return hit  # type: ignore[no-any-return]
        if budget is not None:
            budget.spend()

        def before_sleep(state: RetryCallState) -> None:
            stats.retries += 1
            exc = state.outcome.exception() if state.outcome else None
            log.warning("provider call failed, retrying", extra={"fields": {
                "attempt": state.attempt_number, "error": exc.__class__.__name__ if exc else None}})

        retrying = AsyncRetrying(
            retry=retry_if_exception(transient),
            stop=stop_after_attempt(self.settings.retries + 1),
            wait=wait_exponential_jitter(initial=self.settings.backoff_s, max=self.settings.backoff_max_s),
            before_sleep=before_sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                async with self.limiter:
                    stats.calls += 1
                    result = await fn()
        if key is not None and self.settings.cache_ttl_s > 0:
            self.cache[key] = result
        return result
