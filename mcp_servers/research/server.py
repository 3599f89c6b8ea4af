"""The research MCP server: web search/extract (Tavily), a local corpus, and cited multi-step research.

Tools are thin: they take the caller's principal, call the service (service.py) and render."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult
from pydantic import Field

from mcp_servers.core import audit, auth, params
from mcp_servers.core.annotations import DESTRUCTIVE, READ_ONLY, READ_ONLY_WEB, WRITE, WRITE_WEB
from mcp_servers.core.results import rendered
from mcp_servers.core.server import new_server
from mcp_servers.core.settings import Settings
from mcp_servers.core.transports import ServerSpec

from .config import ResearchSettings
from .models import (
    MAX_QUESTION,
    CorpusAddResult,
    CorpusDeleteResult,
    CorpusListResult,
    CorpusSearchResult,
    Depth,
    JobResult,
    JobStatus,
    ResearchForgetResult,
    ResearchResult,
    SourceKind,
    WebExtractResult,
    WebSearchResult,
)
from .render import (
    render_added,
    render_deleted,
    render_documents,
    render_extracted,
    render_forgot,
    render_job,
    render_passages,
    render_research,
    render_web_hits,
)
from .service import Research
from .web import SearchOptions, TimeRange, Topic

Question = Annotated[str, Field(min_length=1, max_length=MAX_QUESTION, description="What to research.")]
UserId = Annotated[params.UserId, Field(description="Whose documents to include besides the shared corpus.")]
DepthArg = Annotated[Depth, Field(description="quick: a few sub-queries over snippets; deep: more sub-queries "
                                              "and full pages.")]
SourcesArg = Annotated[SourceKind | None, Field(
    description="web (Tavily), corpus (local documents) or both; default both with TAVILY_API_KEY, else corpus.")]
MaxSources = Annotated[int, Field(ge=1, le=20, description="Sources in the result.")]
BudgetArg = Annotated[int | None, Field(ge=1, le=100, description="Max provider calls (default by depth).")]


def _job(status: JobStatus) -> CallToolResult:
    return rendered(status, render_job(status))


def create_server(settings: Settings) -> ServerSpec:
    svc = Research(settings, ResearchSettings())
    mcp = new_server(
        "research",
        "Web search (Tavily, needs TAVILY_API_KEY) and a local document corpus (no key), and "
        "multi-step research with numbered citations. Long research: research_start, then research_status / "
        "research_result.",
        settings,
    )
    audit.install(mcp, settings, "research", forget_tool="research_forget_user")  # forget erases the trail too

    @mcp.tool(annotations=READ_ONLY_WEB)
    async def web_search(
        query: Annotated[str, Field(min_length=1, max_length=400, description="What to search the web for.")],
        max_results: Annotated[int, Field(ge=1, le=20)] = 5,
        topic: Topic = "general",
        time_range: TimeRange | None = None,
        include_domains: Annotated[list[str] | None, Field(max_length=50)] = None,
        exclude_domains: Annotated[list[str] | None, Field(max_length=50)] = None,
    ) -> Annotated[CallToolResult, WebSearchResult]:
        """Search the web with Tavily (needs TAVILY_API_KEY). Results are cached for a while."""
        options = SearchOptions(max_results=max_results, topic=topic, time_range=time_range,
                                include_domains=include_domains or [], exclude_domains=exclude_domains or [])
        out = await svc.web_search(query, options)
        return rendered(out, render_web_hits(out))

    @mcp.tool(annotations=READ_ONLY_WEB)
    async def web_extract(
        urls: Annotated[list[str], Field(min_length=1, max_length=10, description="Pages to read (http/https).")],
        max_chars: Annotated[int, Field(ge=100, le=200_000, description="Text kept per page.")] = 20_000,
    ) -> Annotated[CallToolResult, WebExtractResult]:
        """Read web pages as text: Tavily extract when a key is set, else (and as fallback) our own fetch,
        which refuses private, loopback and metadata addresses."""
        out = await svc.web_extract(urls, max_chars)
        return rendered(out, render_extracted(out))

    @mcp.tool(annotations=READ_ONLY_WEB)
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
        req = svc.request(auth.caller(ctx), question, depth, max_sources, sources, budget, user_id)
        result = await svc.run(req, ctx.report_progress)
        return rendered(result, render_research(result))

    @mcp.tool(annotations=WRITE_WEB)
    @params.arguments_of(research)
    async def research_start(ctx: Context, **request: Any) -> Annotated[CallToolResult, JobStatus]:
        """Start a research job that outlives this call; poll research_status, then research_result."""
        principal = auth.caller(ctx)
        return _job(await svc.start(principal, svc.request(principal, **request)))

    @mcp.tool(annotations=READ_ONLY)
    async def research_status(job_id: Annotated[str, Field(min_length=1, max_length=64)], ctx: Context) -> Annotated[CallToolResult, JobStatus]:
        """Where a research job is: state, stage, progress."""
        return _job((await svc.job(auth.caller(ctx), job_id)).status())

    @mcp.tool(annotations=READ_ONLY)
    async def research_result(
        job_id: Annotated[str, Field(min_length=1, max_length=64)],
        ctx: Context,
        wait_s: Annotated[float, Field(ge=0, le=50, description="Wait up to this long for a running job.")] = 0,
    ) -> Annotated[CallToolResult, JobResult]:
        """The result of a research job (state 'running' with no result yet if it is not finished)."""
        out = await svc.result(auth.caller(ctx), job_id, wait_s)
        return rendered(out, render_research(out.result) if out.result else out.message)

    @mcp.tool(annotations=WRITE)
    async def research_cancel(job_id: Annotated[str, Field(min_length=1, max_length=64)], ctx: Context) -> Annotated[CallToolResult, JobStatus]:
        """Cancel a running research job (provider calls in flight are abandoned)."""
        return _job(await svc.cancel(auth.caller(ctx), job_id))

    @mcp.tool(annotations=WRITE_WEB)
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
        added = await svc.corpus_add(auth.caller(ctx), text, path, url, title, user_id)
        return rendered(added, render_added(added))

    @mcp.tool(annotations=READ_ONLY)
    async def corpus_search(
        query: Annotated[str, Field(min_length=1, max_length=MAX_QUESTION)],
        ctx: Context,
        limit: Annotated[int, Field(ge=1, le=50)] = 10,
        user_id: UserId = None,
    ) -> Annotated[CallToolResult, CorpusSearchResult]:
        """Search the local corpus: the best passages (dense + BM25, fused), each with its document."""
        found = await svc.corpus_search(auth.caller(ctx), query, limit, user_id)
        return rendered(found, render_passages(found))

    @mcp.tool(annotations=READ_ONLY)
    async def corpus_list(
        ctx: Context,
        limit: Annotated[int, Field(ge=1, le=100)] = 20,
        cursor: params.Cursor = None,
        user_id: UserId = None,
    ) -> Annotated[CallToolResult, CorpusListResult]:
        """The corpus's documents, a page at a time (pass next_cursor back for the next page)."""
        listed = await svc.corpus_list(auth.caller(ctx), limit, cursor, user_id)
        return rendered(listed, render_documents(listed))

    @mcp.tool(annotations=DESTRUCTIVE)
    async def corpus_delete(
        doc_id: Annotated[str, Field(min_length=1, max_length=64)],
        ctx: Context,
        user_id: UserId = None,
    ) -> Annotated[CallToolResult, CorpusDeleteResult]:
        """Erase a document and all its passages from the corpus (storage is compacted)."""
        deleted = await svc.corpus_delete(auth.caller(ctx), doc_id, user_id)
        return rendered(deleted, render_deleted(deleted))

    @mcp.tool(annotations=DESTRUCTIVE)
    async def research_forget_user(
        ctx: Context, user_id: Annotated[params.NamedUserId, Field(description="The user to forget.")],
    ) -> Annotated[CallToolResult, ResearchForgetResult]:
        """Erase every trace of a user on this server: their corpus documents (passages and vectors, storage
        compacted), their research jobs and results, and their activity record. Cannot be undone."""
        forgot = await svc.forget_user(auth.caller(ctx), user_id)
        return rendered(forgot, render_forgot(forgot))

    return ServerSpec("research", mcp=mcp, startup=svc.startup, shutdown=svc.shutdown, health=svc.health,
                      ready=lambda: svc.embedder.ready)
