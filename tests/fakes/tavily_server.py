"""A local server speaking Tavily's HTTP API (`POST /search`, `POST /extract`), for tests and benches.

Request and response shapes follow tavily-python 0.8.5 (`AsyncTavilyClient`): bearer-key auth,
`{"detail": {"error": ...}}` error bodies, 429 for rate limits. It also serves its pages as HTML
under `/pages/<slug>` so our own fetcher can read them. Replies come from `pages` (scored by word
overlap with the query) or, without pages, are made up from the query. `script` holds statuses to
answer before succeeding (e.g. [429, 429]); `delay` is added to every API call.
"""

from __future__ import annotations

import asyncio
import html
import re
import time
import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from tests.fakes.background import BackgroundServer


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) > 2}


class FakeTavily(BackgroundServer):
    """`with FakeTavily(pages={"slug": ("Title", "text")}) as fake:`; point the client at `fake.base_url`."""

    def __init__(self, api_key: str = "tvly-test-key", pages: dict[str, tuple[str, str]] | None = None,
                 delay: float = 0.0, port: int | None = None):
        self.api_key = api_key
        self.pages = pages or {}
        self.delay = delay
        self.script: list[int] = []
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.arrivals: list[float] = []  # time.monotonic() of each API call
        self.in_flight = 0
        self.max_in_flight = 0
        super().__init__(Starlette(routes=[
            Route("/search", self._search, methods=["POST"]),
            Route("/extract", self._extract, methods=["POST"]),
            Route("/pages/{slug}", self._page),
        ]), port)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, slug: str) -> str:
        return f"{self.base_url}/pages/{slug}"

    def calls(self, path: str) -> int:
        return sum(p == path for p, _ in self.requests)

    async def _begin(self, request: Request, path: str) -> tuple[dict[str, Any], JSONResponse | None]:
        body = await request.json()
        self.requests.append((path, body))
        self.arrivals.append(time.monotonic())
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return body, JSONResponse({"detail": {"error": "Unauthorized: missing or invalid API key."}}, 401)
        if self.script:
            status = self.script.pop(0)
            return body, JSONResponse({"detail": {"error": f"scripted status {status}"}}, status)
        return body, None

    def _ranked(self, query: str, limit: int) -> list[tuple[str, str, str, float]]:
        q = _words(query)
        if not self.pages:
            slug = "-".join(sorted(q))[:60] or "empty"
            return [(f"{slug}-{i}", f"{query} (result {i})", f"Result {i} about {query}.", 1.0 - i / 10)
                    for i in range(limit)]
        scored = []
        for slug, (title, text) in self.pages.items():
            overlap = len(q & _words(f"{title} {text}"))
            if overlap:
                scored.append((slug, title, text, overlap / max(1, len(q))))
        scored.sort(key=lambda r: -r[3])
        return scored[:limit]

    async def _search(self, request: Request) -> JSONResponse:
        body, error = await self._begin(request, "/search")
        if error:
            return error
        query = str(body.get("query") or "")
        if not query.strip():
            return JSONResponse({"detail": {"error": "Query is missing."}}, 400)
        raw = body.get("include_raw_content")
        results = []
        for slug, title, text, score in self._ranked(query, int(body.get("max_results") or 5)):
            results.append({"url": self.url(slug), "title": title, "content": text[:300], "score": round(score, 4),
                            "raw_content": text if raw else None, "favicon": None})
        return JSONResponse({"query": query, "follow_up_questions": None, "answer": None, "images": [],
                             "results": results, "response_time": round(self.delay, 2),
                             "request_id": str(uuid.uuid4())})

    async def _extract(self, request: Request) -> JSONResponse:
        body, error = await self._begin(request, "/extract")
        if error:
            return error
        urls = body.get("urls") or []
        urls = [urls] if isinstance(urls, str) else urls
        results, failed = [], []
        for url in urls:
            slug = url.rsplit("/pages/", 1)[-1] if "/pages/" in url else None
            if slug in self.pages:
                results.append({"url": url, "raw_content": self.pages[slug][1], "images": []})
            else:
                failed.append({"url": url, "error": "Failed to fetch url"})
        return JSONResponse({"results": results, "failed_results": failed, "response_time": round(self.delay, 2),
                             "request_id": str(uuid.uuid4())})

    async def _page(self, request: Request) -> HTMLResponse:
        slug = request.path_params["slug"]
        if slug not in self.pages:
            return HTMLResponse("<h1>Not found</h1>", 404)
        title, text = self.pages[slug]
        paras = "".join(f"<p>{html.escape(p)}</p>" for p in text.split("\n\n"))
        return HTMLResponse(f"<html><head><title>{html.escape(title)}</title></head><body><nav>Home | About</nav>"
                            f"<article><h1>{html.escape(title)}</h1>{paras}</article></body></html>")
