"""Short texts for the research tools' results, for hosts that read only text."""

from __future__ import annotations

from .corpus import DocInfo
from .models import (
    CorpusAddResult,
    CorpusDeleteResult,
    CorpusListResult,
    CorpusSearchResult,
    JobStatus,
    ResearchForgetResult,
    ResearchResult,
    WebExtractResult,
    WebSearchResult,
)


def render_web_hits(r: WebSearchResult) -> str:
    return "\n".join(f"{h.title} — {h.url}" for h in r.results) or "No results."


def render_extracted(r: WebExtractResult) -> str:
    text = "\n\n".join(f"# {p.title} ({p.url})\n{p.text[:500]}" for p in r.results)
    return text + "".join(f"\nFailed: {f.url}: {f.error}" for f in r.failed)


def render_research(result: ResearchResult) -> str:
    lines = [result.answer] if result.answer else [f"Evidence for: {result.question}"]
    for s in result.sources:
        where = s.url or s.title
        lines.append(f"[{s.n}] {s.title} — {where}" if s.url else f"[{s.n}] {where}")
        if not result.answer and s.passages:
            lines.append("    " + s.passages[0].text[:300].replace("\n", " "))
    lines += [f"Note: {w}" for w in result.warnings]
    return "\n".join(lines)


def render_job(s: JobStatus) -> str:
    where = [s.stage] if s.stage != s.state else []
    where += [f"{s.progress:g}/{s.total:g}"] if s.total else []
    where.append(f"{s.elapsed_s:.1f} s")
    return f"Research job {s.job_id} is {s.state} ({', '.join(where)}): {s.message or s.question}"


def _doc(d: DocInfo) -> str:
    owner = f", {d.user_id}'s" if d.user_id else ", shared"
    return f"{d.title} ({d.doc_id}{owner}; {d.chunks} passages, {d.chars:,} chars, from {d.source})"


def render_added(r: CorpusAddResult) -> str:
    return ("Already in the corpus: " if r.duplicate else "Added: ") + _doc(r.document)


def render_passages(r: CorpusSearchResult) -> str:
    if not r.results:
        return f"No passage matches {r.query!r}."
    return "\n".join(f"{h.score:.3f} {h.title} ({h.doc_id} #{h.chunk}): {h.text[:200].replace(chr(10), ' ')}"
                     for h in r.results)


def render_documents(r: CorpusListResult) -> str:
    if not r.documents:
        return "No documents."
    more = f"\nMore: pass cursor {r.next_cursor!r}." if r.next_cursor else ""
    return f"{len(r.documents)} of {r.total} document(s):\n" + "\n".join(_doc(d) for d in r.documents) + more


def render_deleted(r: CorpusDeleteResult) -> str:
    return "Deleted " + _doc(r.deleted)


def render_forgot(r: ResearchForgetResult) -> str:
    return (f"Forgot {r.user_id} on the research server: {r.documents_deleted} document(s) erased with their "
            f"passages (storage compacted), {r.jobs_deleted} research job(s) dropped, their activity record erased.")
