"""Fetch one page ourselves, safely: SSRF guard on every hop, redirect cap, size and time limits."""

from __future__ import annotations

from dataclasses import dataclass

import anyio
import httpx

from mcp_servers.core.errors import UserError

from .config import ResearchSettings
from .extract import content_charset, content_kind, extract
from .netguard import AddressPolicy, guarded_transport

MAX_URL = 2048
USER_AGENT = "AlphaAvatar-research/0.1"


@dataclass
class Page:
    url: str
    title: str
    text: str


def parse_url(url: str, policy: AddressPolicy) -> httpx.URL:
    """A well-formed http(s) URL whose host is not a refused literal, or a clear UserError."""
    url = url.strip()
    if not url or len(url) > MAX_URL:
        raise UserError(f"A URL must be 1 to {MAX_URL} characters long.")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise UserError(f"Not a valid URL: {url[:200]!r} ({exc}).") from exc
    if parsed.scheme not in ("http", "https"):
        raise UserError(f"Only http and https URLs can be fetched, not {parsed.scheme or 'a bare path'!r}: {url[:200]}")
    if not parsed.host:
        raise UserError(f"This URL names no host: {url[:200]}")
    if parsed.userinfo:
        raise UserError(f"URLs with credentials (user:password@) are not fetched: {parsed.host}")
    policy.check_literal(parsed.host)
    return parsed


class Fetcher:
    """One pooled, guarded HTTP client per process."""

    def __init__(self, settings: ResearchSettings):
        self.settings = settings
        self.policy = AddressPolicy(settings.fetch_allowlist)
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=guarded_transport(self.policy),
                follow_redirects=False,
                trust_env=False,
                timeout=httpx.Timeout(self.settings.fetch_timeout_s, connect=min(10.0, self.settings.fetch_timeout_s)),
                headers={"User-Agent": USER_AGENT, "Accept": "text/html,application/xhtml+xml,application/pdf,"
                         "text/plain;q=0.9,text/markdown;q=0.9,*/*;q=0.1"},
            )
        return self._client

    async def fetch(self, url: str) -> Page:
        """The page's title and text. Raises UserError (Refused for private addresses) on failure."""
        target = parse_url(url, self.policy)
        try:
            with anyio.fail_after(self.settings.fetch_timeout_s):
                data, kind, encoding, final = await self._download(target)
        except TimeoutError:
            raise UserError(f"Fetching {url[:200]} took longer than {self.settings.fetch_timeout_s:g} s.") from None
        except httpx.HTTPError as exc:
            raise UserError(f"Fetching {url[:200]} failed: {exc.__class__.__name__}: {exc}") from exc
        out = await anyio.to_thread.run_sync(extract, data, kind, encoding, str(final))
        return Page(url=str(final), title=out.title, text=out.text)

    async def _download(self, target: httpx.URL) -> tuple[bytes, str, str | None, httpx.URL]:
        """(body, its kind, its charset, the final URL), refused early when the type cannot be read."""
        limit = self.settings.fetch_max_bytes
        for _ in range(self.settings.fetch_max_redirects + 1):
            async with self.client.stream("GET", target) as resp:
                if resp.is_redirect and "location" in resp.headers:
                    # Each hop is re-validated here and again, on its resolved address, at connect.
                    target = parse_url(str(resp.url.join(resp.headers["location"])), self.policy)
                    continue
                if resp.status_code >= 400:
                    raise UserError(f"{resp.url} answered HTTP {resp.status_code}.")
                content_type = resp.headers.get("content-type", "")
                kind = content_kind(content_type, str(resp.url))
                declared = resp.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > limit:
                    raise UserError(f"{resp.url} is {int(declared):,} bytes; the limit is {limit:,}.")
                body = bytearray()
                async for part in resp.aiter_bytes():
                    body += part
                    if len(body) > limit:
                        raise UserError(f"{resp.url} is larger than the {limit:,}-byte limit.")
                return bytes(body), kind, content_charset(content_type), resp.url
        raise UserError(f"More than {self.settings.fetch_max_redirects} redirects; giving up.")

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
