"""The research MCP server: web search/extract (Tavily), a local corpus, and cited multi-step research."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Annotated, Any

import anyio
from mcp.server.mcpserver import Context
from mcp.types import CallToolResult
from pydantic import Field

from mcp_servers.core import audit, auth
from mcp_servers.core.app import new_server
from mcp_servers.core.embeddings import get_embedder
from mcp_servers.core.errors import UserError
from mcp_servers.core.files import allowed_file
from mcp_servers.core.llm import get_llm
from mcp_servers.core.results import rendered
from mcp_servers.core.runner import ServerSpec
from mcp_servers.core.settings import Settings

from .calls import CallStats, ProviderCalls
from .config import ResearchSettings
from .corpus import Corpus
from .extract import SUFFIX_KINDS, extract
from .fetch import Fetcher, parse_url
from .flow import Researcher
from .jobs import Jobs
from .models import (
    MAX_QUESTION,
    CorpusAddResult,
    CorpusDeleteResult,
    CorpusListResult,
    CorpusSearchResult,
    Depth,
    ExtractedItem,
    FailedUrl,
    JobResult,
    JobStatus,
    ResearchRequest,
    ResearchResult,
    SourceKind,
    WebExtractResult,
    WebSearchResult,
)
from .render import render_added, render_deleted, render_documents, render_job, render_passages, render_research
from .web import SearchOptions, Tavily, TimeRange, Topic

log = logging.getLogger(__name__)

Question = Annotated[str, Field(min_length=1, max_length=MAX_QUESTION, description="What to research.")]
UserId = Annotated[str | None, Field(default=None, max_length=200,
                                     description="Whose documents to include besides the shared corpus.")]
DepthArg = Annotated[Depth, Field(description="quick: a few sub-queries over snippets; deep: more sub-queries "
                                              "and full pages.")]
SourcesArg = Annotated[SourceKind | None, Field(
    description="web (Tavily), corpus (local documents) or both; default both with TAVILY_API_KEY, else corpus.")]
MaxSources = Annotated[int, Field(ge=1, le=20, description="Sources in the result.")]
BudgetArg = Annotated[int | None, Field(ge=1, le=100, description="Max provider calls (default by depth).")]


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

    async def shutdown(self) -> None:
        await self.jobs.close()
        await self.web.aclose()
        await self.fetcher.aclose()
        await self.corpus.close()

    def who(self, ctx: Context, user_id: str | None) -> tuple[str | None, bool]:
        """(the user a call acts for, whether the caller has full access)."""
        principal = auth.caller(ctx)
        return auth.scope_user(principal, user_id), principal.user_id is None

    def request(self, ctx: Context, question: str, depth: Depth, max_sources: int, sources: SourceKind | None,
                budget: int | None, user_id: str | None) -> ResearchRequest:
        if not question.strip():
            raise UserError("The question is empty: ask something to research.")
        user, _ = self.who(ctx, user_id)
        req = ResearchRequest(question=question, depth=depth, max_sources=max_sources, sources=sources,
                              budget=budget, user_id=user)
        self.researcher.searched(sources)  # no key for web: refuse now, not inside a job
        return req

    def read_file(self, path: str) -> tuple[str, str, str]:
        """(title, text, resolved path) of a file under the allowed roots."""
        kind = SUFFIX_KINDS.get(Path(path).suffix.lower())
        if kind is None:
            raise UserError(f"Unsupported file type {Path(path).suffix or '(none)'!r}: use .txt, .md, .html or .pdf.")
        target = allowed_file(path, self.settings, self.research.max_file_bytes)
        out = extract(target.read_bytes(), kind)
        return out.title or target.stem, out.text, str(target)


def _job(status: JobStatus) -> CallToolResult:
    return rendered(status, render_job(status))


def create_server(settings: Settings) -> ServerSpec:
    app = Research(settings, ResearchSettings())
    mcp = new_server(
        "research",
        "Web search (Tavily, needs TAVILY_API_KEY) and a local document corpus (no key), and "
        "multi-step research with numbered citations. Long research: research_start, then research_status / "
        "research_result.",
    )
    audit.install(mcp, settings, "research", forget_tool=None)  # the research server has no per-user forget

    @mcp.tool()
    async def web_search(
        query: Annotated[str, Field(min_length=1, max_length=400, description="What to search the web for.")],
        max_results: Annotated[int, Field(ge=1, le=20)] = 5,
        topic: Topic = "general",
        time_range: TimeRange | None = None,
        include_domains: Annotated[list[str] | None, Field(max_length=50)] = None,
        exclude_domains: Annotated[list[str] | None, Field(max_length=50)] = None,
    ) -> Annotated[CallToolResult, WebSearchResult]:
        """Search the web with Tavily (needs TAVILY_API_KEY). Results are cached for a while."""
        if not query.strip():
            raise UserError("The query is empty.")
        options = SearchOptions(max_results=max_results, topic=topic, time_range=time_range,
                                include_domains=include_domains or [], exclude_domains=exclude_domains or [])
        stats = CallStats()
        hits = await app.web.search(query, options, stats=stats)
        out = WebSearchResult(results=hits, query=query, cached=stats.cache_hits > 0)
        return rendered(out, "\n".join(f"{h.title} — {h.url}" for h in hits) or "No results.")

    @mcp.tool()
    async def web_extract(
        urls: Annotated[list[str], Field(min_length=1, max_length=10, description="Pages to read (http/https).")],
        max_chars: Annotated[int, Field(ge=100, le=200_000, description="Text kept per page.")] = 20_000,
    ) -> Annotated[CallToolResult, WebExtractResult]:
        """Read web pages as text: Tavily extract when a key is set, else (and as fallback) our own fetch,
        which refuses private, loopback and metadata addresses."""
        for url in urls:  # every URL valid before any request
            parse_url(url, app.fetcher.policy)
        results: dict[str, ExtractedItem] = {}
        failed: dict[str, str] = {}

        def keep(url: str, title: str, text: str, via: str) -> None:
            results[url] = ExtractedItem(url=url, title=title, text=text[:max_chars], chars=len(text),
                                         truncated=len(text) > max_chars, via=via)  # type: ignore[arg-type]

        if app.web.available:
            try:
                pages, bad = await app.web.extract(urls)
                for p in pages:
                    if p.text:
                        keep(p.url, p.url, p.text, "tavily")
                failed.update(bad)
            except UserError as exc:
                log.info("Tavily extract failed; fetching directly", extra={"fields": {"error": exc.__class__.__name__}})

        async def fetch(url: str) -> None:
            try:
                page = await app.fetcher.fetch(url)
                keep(url, page.title or url, page.text, "fetch")
                failed.pop(url, None)
            except UserError as exc:
                failed[url] = str(exc)

        async with anyio.create_task_group() as tg:
            for url in urls:
                if url not in results:
                    tg.start_soon(fetch, url)
        out = WebExtractResult(results=[results[u] for u in urls if u in results],
                               failed=[FailedUrl(url=u, error=e) for u, e in failed.items() if u not in results])
        if not out.results:
            raise UserError("No page could be read: " + " | ".join(f"{f.url}: {f.error}" for f in out.failed))
        text = "\n\n".join(f"# {r.title} ({r.url})\n{r.text[:500]}" for r in out.results)
        return rendered(out, text + "".join(f"\nFailed: {f.url}: {f.error}" for f in out.failed))

    @mcp.tool()
    async def research(
        question: Question,
        ctx: Context,
        depth: DepthArg = "quick",
        max_sources: MaxSources = 5,
        sources: SourcesArg = None,
        budget: BudgetArg = None,
        user_id: UserId = None,
    ) -> Annotated[CallToolResult, ResearchResult]:
        """Research a question: plan sub-queries, search them in parallel, rank passages, and answer with [n]
        citations (or, without an LLM, return the evidence). Sends progress notifications; for long research
        use research_start."""
        req = app.request(ctx, question, depth, max_sources, sources, budget, user_id)
        result = await app.researcher.run(req, ctx.report_progress)
        return rendered(result, render_research(result))

    @mcp.tool()
    async def research_start(
        question: Question,
        ctx: Context,
        depth: DepthArg = "quick",
        max_sources: MaxSources = 5,
        sources: SourcesArg = None,
        budget: BudgetArg = None,
        user_id: UserId = None,
    ) -> Annotated[CallToolResult, JobStatus]:
        """Start a research job that outlives this call; poll research_status, then research_result."""
        req = app.request(ctx, question, depth, max_sources, sources, budget, user_id)
        owner, _ = app.who(ctx, None)
        job = app.jobs.start(req.question, owner, lambda progress: app.researcher.run(req, progress))
        return _job(job.status())

    @mcp.tool()
    async def research_status(job_id: Annotated[str, Field(min_length=1, max_length=64)], ctx: Context) -> Annotated[CallToolResult, JobStatus]:
        """Where a research job is: state, stage, progress."""
        owner, full = app.who(ctx, None)
        return _job(app.jobs.get(job_id, owner, full).status())

    @mcp.tool()
    async def research_result(
        job_id: Annotated[str, Field(min_length=1, max_length=64)],
        ctx: Context,
        wait_s: Annotated[float, Field(ge=0, le=50, description="Wait up to this long for a running job.")] = 0,
    ) -> Annotated[CallToolResult, JobResult]:
        """The result of a research job (state 'running' with no result yet if it is not finished)."""
        owner, full = app.who(ctx, None)
        job = app.jobs.get(job_id, owner, full)
        await app.jobs.wait(job, wait_s)
        out = app.jobs.result(job)
        return rendered(out, render_research(out.result) if out.result else out.message)

    @mcp.tool()
    async def research_cancel(job_id: Annotated[str, Field(min_length=1, max_length=64)], ctx: Context) -> Annotated[CallToolResult, JobStatus]:
        """Cancel a running research job (provider calls in flight are abandoned)."""
        owner, full = app.who(ctx, None)
        job = app.jobs.get(job_id, owner, full)
        await app.jobs.cancel(job)
        return _job(job.status())

    @mcp.tool()
    async def corpus_add(
        ctx: Context,
        text: Annotated[str | None, Field(description="The document's text.")] = None,
        path: Annotated[str | None, Field(description="A .txt/.md/.html/.pdf file under the allowed roots.")] = None,
        url: Annotated[str | None, Field(description="A public http(s) page to fetch.")] = None,
        title: Annotated[str | None, Field(max_length=300)] = None,
        user_id: UserId = None,
    ) -> Annotated[CallToolResult, CorpusAddResult]:
        """Add one document to the local corpus (exactly one of text, path, url); it is split into passages
        and indexed for dense + keyword search."""
        given = [name for name, v in (("text", text), ("path", path), ("url", url)) if v is not None]
        if len(given) != 1:
            raise UserError("Give exactly one of text, path or url" + (f" (got {', '.join(given)})." if given else "."))
        owner, _ = app.who(ctx, user_id)
        if text is not None:
            body, found_title, source, kind = text, "", "text", "text"
        elif path is not None:
            found_title, body, source = await anyio.to_thread.run_sync(app.read_file, path)
            kind = "file"
        else:
            assert url is not None
            page = await app.fetcher.fetch(url)
            body, found_title, source, kind = page.text, page.title, page.url, "url"
        name = (title or "").strip() or found_title.strip() or body.strip().split("\n", 1)[0][:80] or "untitled"
        doc, duplicate = await app.corpus.add(body, name[:300], source, kind, owner)
        added = CorpusAddResult(document=doc, duplicate=duplicate)
        return rendered(added, render_added(added))

    @mcp.tool()
    async def corpus_search(
        query: Annotated[str, Field(min_length=1, max_length=MAX_QUESTION)],
        ctx: Context,
        limit: Annotated[int, Field(ge=1, le=50)] = 10,
        user_id: UserId = None,
    ) -> Annotated[CallToolResult, CorpusSearchResult]:
        """Search the local corpus: the best passages (dense + BM25, fused), each with its document."""
        if not query.strip():
            raise UserError("The query is empty.")
        owner, _ = app.who(ctx, user_id)
        started = time.perf_counter()
        hits = await app.corpus.search([query], owner, limit)
        found = CorpusSearchResult(results=hits, query=query, elapsed_ms=round((time.perf_counter() - started) * 1e3, 2))
        return rendered(found, render_passages(found))

    @mcp.tool()
    async def corpus_list(
        ctx: Context,
        limit: Annotated[int, Field(ge=1, le=100)] = 20,
        cursor: str | None = None,
        user_id: UserId = None,
    ) -> Annotated[CallToolResult, CorpusListResult]:
        """The corpus's documents, a page at a time (pass next_cursor back for the next page)."""
        owner, _ = app.who(ctx, user_id)
        docs, nxt, total = await app.corpus.list(owner, limit, cursor)
        listed = CorpusListResult(documents=docs, next_cursor=nxt, total=total)
        return rendered(listed, render_documents(listed))

    @mcp.tool()
    async def corpus_delete(
        doc_id: Annotated[str, Field(min_length=1, max_length=64)],
        ctx: Context,
        user_id: UserId = None,
    ) -> Annotated[CallToolResult, CorpusDeleteResult]:
        """Erase a document and all its passages from the corpus (storage is compacted)."""
        owner, full = app.who(ctx, user_id)
        deleted = CorpusDeleteResult(deleted=await app.corpus.delete(doc_id, owner, full and user_id is None))
        return rendered(deleted, render_deleted(deleted))

    def health() -> dict[str, Any]:
        return {"web": app.web.available, "llm": app.researcher.llm is not None, "jobs": len(app.jobs),
                "embeddings": app.embedder.state}

    return ServerSpec("research", mcp=mcp, startup=app.startup, shutdown=app.shutdown, health=health,
                      ready=lambda: app.embedder.ready)
