"""Tool inputs and structured outputs of the research server."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from .corpus import DocInfo, PassageHit
from .web import WebHit

Depth = Literal["quick", "deep"]
SourceKind = Literal["web", "corpus", "both"]
MAX_QUESTION = 2000


class ResearchRequest(BaseModel):
    question: str = Field(min_length=1, max_length=MAX_QUESTION)
    depth: Depth = "quick"
    max_sources: int = Field(default=5, ge=1, le=20)
    sources: SourceKind | None = None
    budget: int | None = Field(default=None, ge=1, le=100)
    user_id: str | None = None


class Passage(BaseModel):
    text: str
    score: float


class Source(BaseModel):
    n: int = Field(description="Its number in the answer's [n] citations.")
    title: str
    kind: Literal["web", "corpus"]
    url: str | None = None
    doc_id: str | None = None
    score: float
    passages: list[Passage] = Field(description="Its best passages for the question, best first.")


class ResearchStats(BaseModel):
    provider_calls: int = 0
    retries: int = 0
    cache_hits: int = 0
    budget: int = 0
    budget_used: int = 0
    sub_queries_skipped: int = 0
    citations_removed: int = 0
    elapsed_ms: float = 0.0


class ResearchResult(BaseModel):
    sources: list[Source] = Field(description="Ranked sources, best first; [n] in the answer is sources[n-1].")
    answer: str | None = Field(description="The cited answer, or None for an evidence bundle.")
    mode: Literal["answer", "evidence"]
    note: str
    question: str
    depth: Depth
    searched: list[Literal["web", "corpus"]]
    sub_queries: list[str]
    warnings: list[str] = Field(default_factory=list)
    stats: ResearchStats


JobState = Literal["running", "done", "failed", "cancelled"]


class JobStatus(BaseModel):
    job_id: str
    state: JobState
    stage: str
    progress: float
    total: float
    message: str
    question: str
    elapsed_s: float


class JobResult(BaseModel):
    job_id: str
    state: JobState
    result: ResearchResult | None = None
    error: str | None = None
    message: str


class WebSearchResult(BaseModel):
    results: list[WebHit]
    query: str
    cached: bool


class ExtractedItem(BaseModel):
    url: str
    title: str
    text: str
    chars: int
    truncated: bool
    via: Literal["tavily", "fetch"]


class FailedUrl(BaseModel):
    url: str
    error: str


class WebExtractResult(BaseModel):
    results: list[ExtractedItem]
    failed: list[FailedUrl]


class CorpusAddResult(BaseModel):
    document: DocInfo
    duplicate: bool = Field(description="True when this text was already in the corpus (nothing added).")


class CorpusSearchResult(BaseModel):
    results: list[PassageHit]
    query: str
    elapsed_ms: float = Field(description="Time spent in the server (query embedding and search).")


class CorpusListResult(BaseModel):
    documents: list[DocInfo]
    next_cursor: str | None
    total: int


class CorpusDeleteResult(BaseModel):
    deleted: DocInfo


class ResearchForgetResult(BaseModel):
    user_id: str
    documents_deleted: int = Field(description="Their corpus documents erased, with every passage and vector.")
    jobs_deleted: int = Field(description="Research jobs they started or that read their documents, cancelled "
                                          "and dropped with their results.")
