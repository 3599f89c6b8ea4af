"""Web research through a real MCP client against a local fake Tavily (its real HTTP API, driven
by tavily-python) and a local fake OpenAI-compatible LLM: search, extract, retries after 429,
the cache, research with progress and validated citations, budgets, jobs across a host
time-out and a new HTTP session, cancellation, and per-user job scoping."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.fakes.tavily_server import FakeTavily
from tests.support import call, http_server, http_session, ok, server_env, stdio_session

PAGES = {
    "ssb-basics": ("How solid-state batteries work",
                   "Solid-state batteries replace the liquid electrolyte with a solid ceramic or polymer one.\n\n"
                   "The solid electrolyte resists fire and allows a lithium-metal anode, raising energy density."),
    "ssb-production": ("Solid-state battery production timeline",
                       "Toyota plans to start producing solid-state battery cells for cars in 2027.\n\n"
                       "Pilot lines in Japan and Korea already make small batches of solid-state cells.\n\n"
                       "Analysts expect the first solid-state cars to cost more than comparable models, and "
                       "prices to fall only once gigafactory-scale lines open around 2030."),
    "ssb-density": ("Energy density of solid-state cells",
                    "Prototype solid-state cells reach 400 Wh/kg, against about 270 Wh/kg for good lithium-ion."),
    "garden": ("Tomato gardening", "Tomatoes need six hours of sun and deep watering twice a week."),
}


def plan_for(question: str) -> list[str]:
    """What the fake LLM plans: two sub-queries derived from the question."""
    return [f"{question} production timeline", f"{question} energy density"]

ANSWER = ("Solid-state batteries use a solid electrolyte [1]. Cars get them from 2027 [2][9]. "
          "They hold more energy per kilogram [1, 12].")


def responder(body: dict[str, Any]) -> Reply:
    if (body.get("response_format") or {}).get("type") == "json_object":
        return Reply(content=json.dumps({"queries": plan_for(body["messages"][-1]["content"])}))
    return Reply(content=ANSWER)


@pytest.fixture(scope="module")
def tavily() -> Iterator[FakeTavily]:
    with FakeTavily(pages=PAGES) as fake:
        yield fake


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(responder) as fake:
        yield fake


def env_for(home: Path, tavily: FakeTavily, llm: FakeOpenAI | None = None, **extra: str) -> dict[str, str]:
    more = {"ALPHAAVATAR_LLM_MODEL": "fake-model", "OPENAI_BASE_URL": llm.base_url, "OPENAI_API_KEY": "sk-fake"} \
        if llm else {}
    return server_env(home, TAVILY_API_KEY=tavily.api_key, TAVILY_BASE_URL=tavily.base_url,
                      ALPHAAVATAR_RESEARCH_BACKOFF_S="0.01", ALPHAAVATAR_RESEARCH_BACKOFF_MAX_S="0.05",
                      # the fake's pages live on loopback: allowed explicitly, as a deployment would
                      ALPHAAVATAR_RESEARCH_FETCH_ALLOWLIST='["127.0.0.1"]', **more, **extra)


async def test_search_extract_retries_and_cache(tmp_path: Path, tavily: FakeTavily) -> None:
    async with stdio_session("research", env_for(tmp_path, tavily)) as s:
        before = tavily.calls("/search")
        got = await ok(s, "web_search", {"query": "solid-state battery production", "max_results": 3})
        assert got["results"] and not got["cached"]
        assert got["results"][0]["url"] == tavily.url("ssb-production")
        assert tavily.requests[-1][1]["max_results"] == 3
        # The same query, spelled differently: answered from the cache, no provider call.
        again = await ok(s, "web_search", {"query": "  Solid-State   battery PRODUCTION ", "max_results": 3})
        assert again["cached"] and again["results"] == got["results"]
        assert tavily.calls("/search") == before + 1

        # Rate limited twice, then fine: retried with back-off.
        tavily.script = [429, 429]
        n = tavily.calls("/search")
        got = await ok(s, "web_search", {"query": "prototype cells Wh/kg"})
        assert got["results"][0]["url"] == tavily.url("ssb-density")
        assert tavily.calls("/search") == n + 3

        # A provider that keeps failing: a clear error after the retries, and the server stays up.
        tavily.script = [500] * 4
        n = tavily.calls("/search")
        r = await call(s, "web_search", {"query": "tomato watering"})
        assert r.is_error and "HTTP 500" in r.text and "retries" in r.text
        assert tavily.calls("/search") == n + 4  # 1 + ALPHAAVATAR_RESEARCH_RETRIES (3)
        tavily.script = [401]
        r = await call(s, "web_search", {"query": "tomato sun"})
        assert r.is_error and "TAVILY_API_KEY" in r.text and tavily.api_key not in r.text
        tavily.script = []

        page = await ok(s, "web_extract", {"urls": [tavily.url("ssb-basics")]})
        assert page["results"][0]["via"] == "tavily" and "solid ceramic" in page["results"][0]["text"]


async def test_research_progress_citations_cache_budget(tmp_path: Path, tavily: FakeTavily, llm: FakeOpenAI) -> None:
    async with stdio_session("research", env_for(tmp_path, tavily, llm)) as s:
        progress: list[tuple[float, float | None, str | None]] = []

        async def on_progress(done: float, total: float | None, message: str | None) -> None:
            progress.append((done, total, message))

        question = "When will cars get solid-state batteries and why are they better?"
        res = await s.call_tool("research", {"question": question, "sources": "web"}, progress_callback=on_progress)
        assert not res.is_error, res.content
        data = res.structured_content
        assert data is not None
        messages = " | ".join(m or "" for _, _, m in progress)
        for stage in ("planning", "searched the web", "ranked", "wrote the answer"):
            assert stage in messages, messages
        assert progress[-1][0] == progress[-1][1]
        assert data["sub_queries"] == [question, *plan_for(question)]
        urls = [src["url"] for src in data["sources"]]
        assert tavily.url("ssb-production") in urls[:2] and tavily.url("garden") not in urls[:3]
        assert [src["n"] for src in data["sources"]] == list(range(1, len(urls) + 1))
        assert len(set(urls)) == len(urls)  # every sub-query found the same pages: one source each
        # Citations: [9] and [12] name no source and are removed; the valid ones stay, one number each.
        assert data["mode"] == "answer" and data["stats"]["citations_removed"] == 2
        cited = {int(n) for n in re.findall(r"\[(\d+)\]", data["answer"])}
        assert cited == {1, 2} and "[9]" not in data["answer"] and "12" not in data["answer"]
        assert data["stats"]["provider_calls"] == 3 and data["stats"]["cache_hits"] == 0
        synthesis = llm.requests[-1]["messages"][-1]["content"]
        assert "[1] " in synthesis and question in synthesis

        # The same research again: every search from the cache.
        again = await ok(s, "research", {"question": question, "sources": "web"})
        assert again["stats"]["provider_calls"] == 0 and again["stats"]["cache_hits"] == 3
        assert [src["url"] for src in again["sources"]] == urls

        # Deep research reads whole pages (Tavily extract, one call): text past the search snippet.
        quick = await ok(s, "research", {"question": "When will solid-state car prices fall?", "sources": "web"})
        extracts = tavily.calls("/extract")
        deep = await ok(s, "research", {"question": "When will solid-state car prices fall?", "sources": "web",
                                        "depth": "deep"})
        assert tavily.calls("/extract") == extracts + 1
        assert "2030" not in json.dumps(quick["sources"]) and "2030" in json.dumps(deep["sources"])

        # A budget of one provider call: one sub-query is searched, the others are reported as skipped.
        tight = await ok(s, "research", {"question": "Which companies build solid-state battery pilot lines?",
                                         "sources": "web", "depth": "deep", "budget": 1})
        assert tight["stats"]["budget_used"] == 1 and tight["stats"]["sub_queries_skipped"] >= 1
        assert any("budget of 1 provider calls was spent" in w for w in tight["warnings"]), tight["warnings"]


async def test_jobs_outlive_the_call_and_can_be_cancelled(tmp_path: Path, tavily: FakeTavily) -> None:
    env = env_for(tmp_path, tavily, ALPHAAVATAR_TOKEN="owner-token",
                  ALPHAAVATAR_USER_TOKENS=json.dumps({"bob-token": "bob"}))
    tavily.delay = 1.0
    try:
        with http_server(["serve", "research", "--transport", "http"], env) as base:
            url = f"{base}/mcp"
            question = "How do solid-state batteries work?"
            async with http_session(url, "owner-token") as s:
                # The host gives up on a synchronous call after 0.3 s ...
                with pytest.raises(Exception, match=r"(?i)time"):
                    await s.call_tool("research", {"question": question, "sources": "web"}, read_timeout_seconds=0.3)
                # ... so it starts a job instead, and goes away.
                job = await ok(s, "research_start", {"question": question, "sources": "web"})
                assert job["state"] == "running"
            async with http_session(url, "bob-token") as bob:
                r = await call(bob, "research_status", {"job_id": job["job_id"]})
                assert r.is_error and "no research job" in r.text.lower()
            async with http_session(url, "owner-token") as s:
                status = await ok(s, "research_status", {"job_id": job["job_id"]})
                assert status["state"] in ("running", "done") and status["total"] >= 1
                out = await ok(s, "research_result", {"job_id": job["job_id"], "wait_s": 30})
                assert out["state"] == "done", out
                assert out["result"]["sources"][0]["url"] == tavily.url("ssb-basics")

                tavily.delay = 20.0
                slow = await ok(s, "research_start", {"question": "solid-state battery recycling", "sources": "web"})
                cancelled = await ok(s, "research_cancel", {"job_id": slow["job_id"]})
                assert cancelled["state"] == "cancelled"
                out = await ok(s, "research_result", {"job_id": slow["job_id"]})
                assert out["state"] == "cancelled" and out["result"] is None
    finally:
        tavily.delay = 0.0
