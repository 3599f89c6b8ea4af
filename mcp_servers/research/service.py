"""What the research tools do, behind the MCP layer: each method takes the caller's principal and
plain arguments and returns the tool's output model, so it can be used in-process as well."""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

import anyio

from mcp_servers.core import auth
from mcp_servers.core.auth import Principal
from mcp_servers.core.embeddings import get_embedder
from mcp_servers.core.errors import UserError
from mcp_servers.core.files import allowed_file
from mcp_servers.core.llm import get_llm
from mcp_servers.core.params import Progress
from mcp_servers.core.settings import Settings
from mcp_servers.core.store import open_store
from mcp_servers.core.store.aio import off_loop

from .board import JOBS_SPEC, JobBoard
from .calls import CallStats, ProviderCalls
from .config import ResearchSettings
from .corpus import Corpus
from .extract import SUFFIX_KINDS, extract
from .fetch import Fetcher, parse_url
from .flow import Researcher
from .jobs import Job, Jobs
from .models import (
    CorpusAddResult,
    CorpusDeleteResult,
    CorpusListResult,
    CorpusSearchResult,
    Depth,
    ExtractedItem,
    FailedUrl,
    JobResult,
    JobStatus,
    ResearchForgetResult,
    ResearchRequest,
    ResearchResult,
    SourceKind,
    WebExtractResult,
    WebSearchResult,
)
from .reading import read_pages
from .web import SearchOptions, Tavily


class Research:
    """Process-level parts, opened once for every MCP session."""

    def __init__(self, settings: Settings, research: ResearchSettings):
        self.settings = settings
        self.research = research
        self.embedder = get_embedder(settings)
        self.corpus = Corpus(settings, research)
        self.calls = ProviderCalls(research)
        self.web = Tavily(research, self.calls)
        self.fetcher = Fetcher(research)
        self.researcher = Researcher(self.corpus, self.web, self.fetcher, get_llm(settings), self.embedder, research)
        self.jobs = Jobs(research.job_ttl_s, research.max_jobs)

    async def startup(self) -> None:
        self.embedder.warm()
        await self.corpus.open()
        if self.settings.qdrant_url:  # jobs every replica answers for
            self.jobs.board = JobBoard(await off_loop(open_store, self.settings, "research", JOBS_SPEC))

    async def shutdown(self) -> None:
        await self.jobs.close()
        await self.web.aclose()
        await self.fetcher.aclose()
        await self.corpus.close()

    def health(self) -> dict[str, Any]:
        return {"web": self.web.available, "llm": self.researcher.llm is not None, "jobs": len(self.jobs),
                "embeddings": self.embedder.state}

    # the web ------------------------------------------------------------------------------
    async def web_search(self, query: str, options: SearchOptions) -> WebSearchResult:
        if not query.strip():
            raise UserError("The query is empty.")
        stats = CallStats()
        hits = await self.web.search(query, options, stats=stats)
        return WebSearchResult(results=hits, query=query, cached=stats.cache_hits > 0)

    async def web_extract(self, urls: list[str], max_chars: int) -> WebExtractResult:
        for url in urls:  # every URL valid before any request
            parse_url(url, self.fetcher.policy)
        reading = await read_pages(self.web, self.fetcher, urls, self.research.concurrency)
        out = WebExtractResult(
            results=[ExtractedItem(url=u, title=p.title, text=p.text[:max_chars], chars=len(p.text),
                                   truncated=len(p.text) > max_chars, via=p.via)
                     for u in urls if (p := reading.pages.get(u))],
            failed=[FailedUrl(url=u, error=e) for u, e in reading.failed.items()])
        if not out.results:
            raise UserError("No page could be read: " + " | ".join(f"{f.url}: {f.error}" for f in out.failed))
        return out

    # research and its jobs ----------------------------------------------------------------
    def request(self, principal: Principal, question: str, depth: Depth, max_sources: int,
                sources: SourceKind | None, budget: int | None, user_id: str | None) -> ResearchRequest:
        if not question.strip():
            raise UserError("The question is empty: ask something to research.")
        req = ResearchRequest(question=question, depth=depth, max_sources=max_sources, sources=sources,
                              budget=budget, user_id=auth.scope_user(principal, user_id))
        self.researcher.searched(sources)  # no key for web: refuse now, not inside a job
        return req

    async def run(self, req: ResearchRequest, progress: Progress) -> ResearchResult:
        return await self.researcher.run(req, progress)

    async def start(self, principal: Principal, req: ResearchRequest) -> JobStatus:
        work = functools.partial(self.run, req)
        return (await self.jobs.start(req.question, principal.user_id, req.user_id, work)).status()

    async def job(self, principal: Principal, job_id: str) -> Job:
        """A job this caller may see: a user token sees only the jobs it started."""
        return await self.jobs.get(job_id, principal.user_id, principal.user_id is None)

    async def result(self, principal: Principal, job_id: str, wait_s: float) -> JobResult:
        job = await self.jobs.wait(await self.job(principal, job_id), wait_s)
        return self.jobs.result(job)

    async def cancel(self, principal: Principal, job_id: str) -> JobStatus:
        job = await self.jobs.cancel(await self.job(principal, job_id))
        return job.status()

    # the corpus ---------------------------------------------------------------------------
    async def corpus_add(self, principal: Principal, text: str | None, path: str | None, url: str | None,
                         title: str | None, user_id: str | None) -> CorpusAddResult:
        """Index one document from exactly one of text, a file under the allowed roots, or a URL."""
        given = [name for name, v in (("text", text), ("path", path), ("url", url)) if v is not None]
        if len(given) != 1:
            raise UserError("Give exactly one of text, path or url" + (f" (got {', '.join(given)})." if given else "."))
        owner = auth.scope_user(principal, user_id)
        if text is not None:
            body, found_title, source, kind = text, "", "text", "text"
        elif path is not None:
            found_title, body, source = await anyio.to_thread.run_sync(self._read_file, path)
            kind = "file"
        else:
            assert url is not None
            page = await self.fetcher.fetch(url)
            body, found_title, source, kind = page.text, page.title, page.url, "url"
        name = (title or "").strip() or found_title.strip() or body.strip().split("\n", 1)[0][:80] or "untitled"
        doc, duplicate = await self.corpus.add(body, name[:300], source, kind, owner)
        return CorpusAddResult(document=doc, duplicate=duplicate)

    def _read_file(self, path: str) -> tuple[str, str, str]:
        """(title, text, resolved path) of a file under the allowed roots."""
        kind = SUFFIX_KINDS.get(Path(path).suffix.lower())
        if kind is None:
            raise UserError(f"Unsupported file type {Path(path).suffix or '(none)'!r}: use .txt, .md, .html or .pdf.")
        target = allowed_file(path, self.settings, self.research.max_file_bytes)
        out = extract(target.read_bytes(), kind)
        return out.title or target.stem, out.text, str(target)

    async def corpus_search(self, principal: Principal, query: str, limit: int, user_id: str | None) -> CorpusSearchResult:
        if not query.strip():
            raise UserError("The query is empty.")
        owner = auth.scope_user(principal, user_id)
        started = time.perf_counter()
        hits = await self.corpus.search([query], owner, limit)
        return CorpusSearchResult(results=hits, query=query, elapsed_ms=round((time.perf_counter() - started) * 1e3, 2))

    async def corpus_list(self, principal: Principal, limit: int, cursor: str | None,
                          user_id: str | None) -> CorpusListResult:
        docs, nxt, total = await self.corpus.list(auth.scope_user(principal, user_id), limit, cursor)
        return CorpusListResult(documents=docs, next_cursor=nxt, total=total)

    async def corpus_delete(self, principal: Principal, doc_id: str, user_id: str | None) -> CorpusDeleteResult:
        owner = auth.scope_user(principal, user_id)
        full = principal.user_id is None and user_id is None  # the owner, not acting for one user
        return CorpusDeleteResult(deleted=await self.corpus.delete(doc_id, owner, full))

    # erasure --------------------------------------------------------------------------------
    async def forget_user(self, principal: Principal, user_id: str) -> ResearchForgetResult:
        """Erase every trace of a user here: their documents (store compacted) and research jobs. A user
        token may forget only its own user; the server's audit trail of them goes with it (audit.install)."""
        user = auth.scope_user(principal, user_id)
        if not user or not user.strip():
            raise UserError("Say which user to forget.")
        jobs = await self.jobs.forget(user)  # first: no job of theirs is still reading the corpus
        documents = await self.corpus.forget(user)
        return ResearchForgetResult(user_id=user, documents_deleted=documents, jobs_deleted=jobs)
