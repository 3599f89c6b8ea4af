"""Tavily web search and extract through `AsyncTavilyClient`, with our call discipline around it."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

import httpx
from pydantic import BaseModel, Field
from tavily import AsyncTavilyClient
from tavily import errors as tavily_errors

from mcp_servers.core.errors import UserError

from .calls import Budget, CallStats, ProviderCalls
from .config import ResearchSettings

log = logging.getLogger(__name__)
T = TypeVar("T")

NO_KEY = (
    "Web search needs a Tavily API key: set TAVILY_API_KEY (or ALPHAAVATAR_RESEARCH_TAVILY_API_KEY) for the "
    "research server. Without a key, research the local corpus instead (sources='corpus', documents added "
    "with corpus_add)."
)

Topic = Literal["general", "news", "finance"]
TimeRange = Literal["day", "week", "month", "year"]


class SearchOptions(BaseModel):
    """What a web search may be narrowed by (part of the cache key)."""

    max_results: int = Field(default=5, ge=1, le=20)
    topic: Topic = "general"
    time_range: TimeRange | None = None
    include_domains: list[str] = Field(default_factory=list, max_length=50)
    exclude_domains: list[str] = Field(default_factory=list, max_length=50)
    search_depth: Literal["basic", "advanced"] = "basic"


class WebHit(BaseModel):
    title: str
    url: str
    content: str = Field(description="The provider's snippet of the page.")
    score: float = 0.0
    raw_content: str | None = Field(default=None, exclude=True)


class ExtractedPage(BaseModel):
    url: str
    text: str


def _error(exc: Exception) -> UserError:
    """A provider failure as something a person can act on (never echoing the key)."""
    if isinstance(exc, tavily_errors.InvalidAPIKeyError):
        return UserError("Tavily rejected the API key: check TAVILY_API_KEY.")
    if isinstance(exc, tavily_errors.UsageLimitExceededError):
        return UserError("Tavily kept answering 429 (rate limited) after retries; try again shortly.")
    if isinstance(exc, tavily_errors.ForbiddenError):
        return UserError(f"Tavily refused the request (plan or usage limit): {exc}")
    if isinstance(exc, tavily_errors.BadRequestError):
        return UserError(f"Tavily rejected the request: {exc}")
    if isinstance(exc, tavily_errors.TimeoutError):
        return UserError(f"Tavily did not answer in time: {exc}")
    if isinstance(exc, httpx.HTTPStatusError):
        return UserError(f"Tavily answered HTTP {exc.response.status_code} after retries; try again later.")
    if isinstance(exc, httpx.HTTPError):
        return UserError(f"Tavily could not be reached ({exc.__class__.__name__}).")
    raise exc


class Tavily:
    """The web provider. `available` is False without a key; calls then raise a clear error."""

    def __init__(self, settings: ResearchSettings, calls: ProviderCalls):
        self.settings = settings
        self.calls = calls
        self._client: AsyncTavilyClient | None = None

    @property
    def available(self) -> bool:
        return self.settings.tavily_api_key is not None

    def _tavily(self) -> AsyncTavilyClient:
        if self.settings.tavily_api_key is None:
            raise UserError(NO_KEY)
        if self._client is None:
            self._client = AsyncTavilyClient(
                api_key=self.settings.tavily_api_key.get_secret_value(),
                api_base_url=self.settings.tavily_base_url,
                client_source="alphaavatar",
            )
        return self._client

    async def search(
        self, query: str, options: SearchOptions, budget: Budget | None = None, stats: CallStats | None = None
    ) -> list[WebHit]:
        client = self._tavily()
        opts = options.model_dump(exclude_none=True)
        include_raw = options.search_depth == "advanced"

        async def run() -> list[WebHit]:
            resp: dict[str, Any] = await client.search(
                query, **opts, include_raw_content="text" if include_raw else None, timeout=self.settings.timeout_s
            )
            return [
                WebHit(title=str(r.get("title") or r.get("url", "")), url=str(r["url"]), content=str(r.get("content") or ""),
                       score=float(r.get("score") or 0.0), raw_content=r.get("raw_content"))
                for r in resp.get("results", []) if r.get("url")
            ]

        return await self._call(run, self.calls.key("search", query, opts), budget, stats)

    async def extract(
        self, urls: list[str], budget: Budget | None = None, stats: CallStats | None = None
    ) -> tuple[list[ExtractedPage], dict[str, str]]:
        """Pages Tavily could read, and {url: reason} for those it could not."""
        client = self._tavily()

        async def run() -> tuple[list[ExtractedPage], dict[str, str]]:
            resp: dict[str, Any] = await client.extract(urls, format="text", timeout=self.settings.timeout_s)
            pages = [ExtractedPage(url=str(r["url"]), text=str(r.get("raw_content") or ""))
                     for r in resp.get("results", []) if r.get("url")]
            failed = {str(f.get("url")): str(f.get("error") or "failed") for f in resp.get("failed_results", [])}
            return pages, failed

        return await self._call(run, self.calls.key("extract", "", {"urls": urls}), budget, stats)

    async def _call(self, run: Callable[[], Awaitable[T]], key: str, budget: Budget | None,
                    stats: CallStats | None) -> T:
        """`run` under the call discipline, its failures worded for a person."""
        try:
            return await self.calls.call(run, key=key, budget=budget, stats=stats)
        except UserError:  # the budget is spent: already worded
            raise
        except Exception as exc:
            raise _error(exc) from exc

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
