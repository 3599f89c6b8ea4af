"""Reading whole pages: Tavily extract in one call when a key is set, our own fetch (which refuses
private, loopback and metadata addresses) for the rest and whenever Tavily fails. web_extract and
deep research both read pages this way."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Literal

from mcp_servers.core.errors import UserError

from .calls import Budget, CallStats
from .fetch import Fetcher
from .rank import canonical_url
from .web import Tavily

log = logging.getLogger(__name__)


@dataclass
class ReadPage:
    title: str
    text: str
    via: Literal["tavily", "fetch"]


@dataclass
class Reading:
    pages: dict[str, ReadPage] = field(default_factory=dict)  # by the URL as asked
    failed: dict[str, str] = field(default_factory=dict)  # URL -> why it could not be read
    tavily_error: UserError | None = None  # Tavily extract failed as a whole (pages were fetched instead)


async def read_pages(web: Tavily, fetcher: Fetcher, urls: list[str], concurrency: int,
                     budget: Budget | None = None, stats: CallStats | None = None) -> Reading:
    """The text of these pages; every URL ends in `pages` or in `failed`."""
    urls = list(dict.fromkeys(urls))
    out = Reading()
    if web.available:
        try:
            got, bad = await web.extract(urls, budget, stats)
            by_key = {canonical_url(p.url): p.text for p in got if p.text}
            for url in urls:
                if text := by_key.get(canonical_url(url)):
                    out.pages[url] = ReadPage(title=url, text=text, via="tavily")
            out.failed.update(bad)
        except UserError as exc:
            out.tavily_error = exc
            log.info("Tavily extract failed; fetching directly", extra={"fields": {"error": exc.__class__.__name__}})
    gate = asyncio.Semaphore(concurrency)

    async def fetch(url: str) -> None:
        async with gate:
            try:
                page = await fetcher.fetch(url)
                out.pages[url] = ReadPage(title=page.title or url, text=page.text, via="fetch")
            except UserError as exc:
                out.failed[url] = str(exc)

    await asyncio.gather(*(fetch(u) for u in urls if u not in out.pages))
    out.failed = {u: e for u, e in out.failed.items() if u not in out.pages}
    return out
