"""The research flow: plan → search in parallel → de-duplicate → extract → rank passages →
write a cited answer (LLM) or hand back an evidence bundle (no LLM)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import numpy as np

from mcp_servers.core.embeddings import Embedder
from mcp_servers.core.errors import UserError
from mcp_servers.core.llm import LLM, llm_failed
from mcp_servers.core.params import Progress
from mcp_servers.core.ranking import rrf
from mcp_servers.core.store import Hit

from .calls import Budget, BudgetExhausted, CallStats
from .chunking import passages
from .config import ResearchSettings
from .corpus import CANDIDATES, Corpus, PassageHit
from .fetch import Fetcher
from .models import Passage, ResearchRequest, ResearchResult, ResearchStats, Source
from .plan import plan
from .rank import canonical_url, lexical_scores
from .reading import read_pages
from .synthesis import ANSWER_NOTE, EVIDENCE_NOTE, synthesize
from .web import NO_KEY, SearchOptions, Tavily, WebHit

log = logging.getLogger(__name__)

PASSAGES_PER_SOURCE = 3
PASSAGE_CHARS = 1500
MAX_PASSAGES_SCANNED = 40  # per web page


@dataclass
class _Page:
    url: str
    title: str
    snippets: list[str] = field(default_factory=list)
    text: str | None = None


def _order(ids: list[str]) -> list[Hit]:
    return [Hit(i, 0.0) for i in ids]


class Researcher:
    def __init__(self, corpus: Corpus, web: Tavily, fetcher: Fetcher, llm: LLM | None, embedder: Embedder,
                 settings: ResearchSettings):
        self.corpus, self.web, self.fetcher, self.llm = corpus, web, fetcher, llm
        self.embedder, self.settings = embedder, settings

    def searched(self, sources: str | None) -> list[str]:
        if sources is None:
            return ["web", "corpus"] if self.web.available else ["corpus"]
        chosen = ["web", "corpus"] if sources == "both" else [sources]
        if "web" in chosen and not self.web.available:
            raise UserError(NO_KEY)
        return chosen

    async def run(self, req: ResearchRequest, progress: Progress) -> ResearchResult:
        started = time.perf_counter()
        question = " ".join(req.question.split())
        if not question:
            raise UserError("The question is empty: ask something to research.")
        searched = self.searched(req.sources)
        deep = req.depth == "deep"
        budget = Budget(req.budget or (self.settings.deep_budget if deep else self.settings.quick_budget))
        stats = CallStats()
        warnings: list[str] = []

        await progress(0, 1, "planning sub-queries")
        n = self.settings.deep_queries if deep else self.settings.quick_queries
        queries, warn = await plan(question, n, deep, self.llm)
        warnings += [warn] if warn else []
        web = "web" in searched
        total = 1 + (len(queries) if web else 0) + ("corpus" in searched) + (deep and web) + 1 + bool(self.llm)
        done = 1

        async def step(message: str) -> None:
            nonlocal done
            done += 1
            await progress(done, total, message)

        await progress(done, total, f"planned {len(queries)} sub-queries")
        orders: list[list[Hit]] = []
        found: dict[str, tuple[str, str | None, str | None, list[Passage]]] = {}
        skipped = 0
        if web:
            pages, provider_order, skipped = await self._search_web(queries, budget, stats, warnings, step,
                                                                    alone="corpus" not in searched)
            if deep and pages:
                await self._read_pages(pages, provider_order, req.max_sources, budget, stats, warnings)
                await step("read full pages")
            ranked = await self._rank_pages(question, pages, provider_order, deep)
            orders.append(_order([key for key, _ in ranked]))
            for key, best in ranked:
                found[key] = (pages[key].title, pages[key].url, None, best)
        if "corpus" in searched:
            hits = await self.corpus.search(queries, req.user_id, CANDIDATES)
            by_doc: dict[str, list[PassageHit]] = {}
            for ph in hits:
                by_doc.setdefault(ph.doc_id, []).append(ph)
            orders.append(_order([f"doc:{d}" for d in by_doc]))
            for doc_id, ps in by_doc.items():
                found[f"doc:{doc_id}"] = (ps[0].title, None, doc_id,
                                          [Passage(text=p.text[:PASSAGE_CHARS], score=p.score)
                                           for p in ps[:PASSAGES_PER_SOURCE]])
            if not hits and await self.corpus.empty():
                warnings.append("The corpus is empty: add documents with corpus_add.")
            await step("searched the local corpus")

        fused = orders[0] if len(orders) == 1 else rrf(orders, k=10.0)
        sources = []
        for i, top in enumerate(fused[: req.max_sources]):
            title, url, source_doc, best = found[top.id]
            sources.append(Source(n=i + 1, title=title, kind="corpus" if source_doc else "web", url=url,
                                  doc_id=source_doc,
                                  score=round(best[0].score if best else 0.0, 6), passages=best))
        await step(f"ranked {len(sources)} sources")

        answer, removed = None, 0
        if self.llm is not None and sources:
            try:
                answer, _, cut = await synthesize(self.llm, question, sources)
                removed = len(cut)
            except Exception as exc:
                log.warning("synthesis failed; returning evidence", extra={"fields": {"error": exc.__class__.__name__}})
                warnings.append(f"The answer could not be written: {llm_failed(exc)} Here is the evidence instead.")
            await step("wrote the answer" if answer else "synthesis failed")
        if done < total:
            await progress(total, total, "done")
        return ResearchResult(
            sources=sources, answer=answer, mode="answer" if answer else "evidence",
            note=ANSWER_NOTE if answer else EVIDENCE_NOTE, question=question, depth=req.depth,
            searched=[s for s in ("web", "corpus") if s in searched],  # type: ignore[misc]
            sub_queries=queries, warnings=warnings,
            stats=ResearchStats(provider_calls=stats.calls, retries=stats.retries, cache_hits=stats.cache_hits,
                                budget=budget.limit, budget_used=budget.used, sub_queries_skipped=skipped,
                                citations_removed=removed, elapsed_ms=round((time.perf_counter() - started) * 1000, 1)),
        )

    async def _search_web(
        self, queries: list[str], budget: Budget, stats: CallStats, warnings: list[str],
        step: Callable[[str], Awaitable[None]], alone: bool,
    ) -> tuple[dict[str, _Page], list[Hit], int]:
        """Every sub-query at once (under the concurrency limit); pages keyed by canonical URL."""
        gate = asyncio.Semaphore(self.settings.concurrency)
        options = SearchOptions()

        async def one(q: str) -> list[WebHit] | UserError:
            async with gate:
                try:
                    return await self.web.search(q, options, budget, stats)
                except UserError as exc:
                    return exc
                finally:
                    await step(f"searched the web: {q[:80]}")

        results = await asyncio.gather(*(one(q) for q in queries))
        errors = [r for r in results if isinstance(r, UserError)]
        skipped = sum(isinstance(e, BudgetExhausted) for e in errors)
        if skipped:
            warnings.append(f"The budget of {budget.limit} provider calls was spent: {skipped} of {len(queries)} "
                            "sub-queries were not searched (raise `budget` to search them).")
        failures = [e for e in errors if not isinstance(e, BudgetExhausted)]
        if alone and failures and len(failures) == len(queries):  # only the web, and every search failed
            raise failures[0]
        warnings += [f"A web search failed: {e}" for e in failures[:3]]
        pages: dict[str, _Page] = {}
        lists: list[list[Hit]] = []
        for r in results:
            if isinstance(r, UserError):
                continue
            keys = []
            for hit in r:
                key = canonical_url(hit.url)
                page = pages.setdefault(key, _Page(url=hit.url, title=hit.title))
                if hit.content and hit.content not in page.snippets:
                    page.snippets.append(hit.content)
                page.text = page.text or hit.raw_content
                if key not in keys:
                    keys.append(key)
            lists.append(_order(keys))
        weights = [1.0] + [0.5] * (len(lists) - 1)
        return pages, (rrf(lists, weights, k=10.0) if lists else []), skipped

    async def _read_pages(self, pages: dict[str, _Page], order: list[Hit], max_sources: int, budget: Budget,
                          stats: CallStats, warnings: list[str]) -> None:
        """Full text of the leading pages (Tavily extract, our own fetch for the rest)."""
        want = [h.id for h in order[: max_sources + 2] if pages[h.id].text is None]
        if not want:
            return
        reading = await read_pages(self.web, self.fetcher, [pages[k].url for k in want], self.settings.concurrency,
                                   budget, stats)
        if reading.tavily_error is not None:
            warnings.append(f"Tavily extract failed ({reading.tavily_error}); fetching pages directly.")
        for k in want:
            if read := reading.pages.get(pages[k].url):
                pages[k].text = read.text or None
        unread = sum(pages[k].text is None for k in want)
        if unread:
            warnings.append(f"{unread} page(s) could not be read in full; their search snippets were used.")

    async def _rank_pages(self, question: str, pages: dict[str, _Page], provider_order: list[Hit],
                          deep: bool) -> list[tuple[str, list[Passage]]]:
        """Pages ordered by their best passages (BM25, plus dense when deep) fused with provider rank."""
        if not pages:
            return []
        owners: list[str] = []
        texts: list[str] = []
        for key, page in pages.items():
            body = page.text or "\n\n".join(page.snippets) or page.title
            for p in passages(body, self.settings.chunk_words)[:MAX_PASSAGES_SCANNED]:
                owners.append(key)
                texts.append(p)
        lexical = np.asarray(lexical_scores(question, texts))
        lists = [_order([str(i) for i in np.argsort(-lexical, kind="stable")])]
        if deep:
            vecs = await self.embedder.aembed([question, *texts])
            dense = vecs[1:] @ vecs[0]
            lists.append(_order([str(i) for i in np.argsort(-dense, kind="stable")]))
        fused = rrf(lists, k=10.0)
        best: dict[str, list[Passage]] = {}
        for h in fused:
            i = int(h.id)
            best.setdefault(owners[i], [])
            if len(best[owners[i]]) < PASSAGES_PER_SOURCE:
                best[owners[i]].append(Passage(text=texts[i][:PASSAGE_CHARS], score=round(h.score, 6)))
        final = rrf([provider_order, _order(list(best))], k=10.0)  # ties: the provider's order
        return [(h.id, best[h.id]) for h in final if h.id in best]
