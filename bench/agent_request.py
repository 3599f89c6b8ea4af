"""What one LLM request of the agent carries, per example config, and how well find_tools finds.

    .venv/bin/python bench/agent_request.py [--configs clients/examples/*.yaml] [--json OUT]

Each example config runs one typed turn against its real MCP servers (stdio), its LLM pointed at
the local recording OpenAI-compatible server; the recorded request's `tools` (JSON, as sent) is
measured twice: with every discovered tool up front (`tools.visible=['*']`, the agent before the
tool policy) and with the config's own policy (the default: a few tools + find_tools/call_tool).
Then the tool search is scored on everyday requests (bench/tool_requests.yaml; hit@1, hit@3 over
all discovered tools): BM25 alone, MiniLM alone, and the hybrid the agent uses.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from agent.config_file import load_config  # noqa: E402
from agent.mcp_sessions import McpHub  # noqa: E402
from agent.pipeline import build_runtime, server_env  # noqa: E402
from agent.tools import _schema_for_llm  # noqa: E402
from agent.toolsearch import DENSE_WEIGHT, ToolDoc, ToolIndex, wait_for_model  # noqa: E402
from bench.figures import run_benchmark  # noqa: E402
from tests.fakes.openai_server import FakeOpenAI  # noqa: E402
from tests.support import server_env as clean_env  # noqa: E402

# Everyday requests, and the tools that would serve each.
QUERIES = [(request, set(tools)) for request, tools in
           yaml.safe_load((ROOT / "bench" / "tool_requests.yaml").read_text()).items()]


async def one_request(path: Path, fake: FakeOpenAI, home: Path, overrides: list[str]) -> dict[str, Any]:
    env = {**clean_env(home), "ALPHAAVATAR_LLM_MODEL": "fake", "OPENAI_BASE_URL": fake.base_url,
           "OPENAI_API_KEY": "k", "LOCAL_LLM_URL": fake.base_url}
    config = load_config(path, ["character.airi_url=", *overrides], env=env)
    hub = McpHub(config.mcp_servers, {**server_env(config), **env})
    assert not await hub.start(), f"{path.name}: servers did not start"
    try:
        runtime = build_runtime(config, hub, user_id="bench", home=home / "agent")
        await runtime.session.start(runtime.agent, record=False)
        before = len(fake.requests)
        await runtime.agent.text_turn("Hello!")
        await runtime.aclose()
        body = next(b for b in fake.requests[before:] if "messages" in b)
        tools = body.get("tools") or []
        return {"tools": len(tools), "chars": len(json.dumps(tools)), "request_chars": len(json.dumps(body)),
                "docs": [ToolDoc(e.tool.name, e.tool.description or "", _schema_for_llm(e.tool.input_schema))
                         for e in hub.tools()]}
    finally:
        await hub.aclose()


def search_quality(docs: list[ToolDoc]) -> dict[str, dict[str, float]]:
    names = {d.name for d in docs}
    queries = [(q, want) for q, want in QUERIES if want & names]
    out = {}
    for label, dense, weight in (("BM25", False, 0.0), ("MiniLM", True, 1.0), ("hybrid (agent)", True, DENSE_WEIGHT)):
        index = ToolIndex(dense=dense, weight=weight)
        index.rebuild(docs)
        ranks = [[d.name for d, _ in index.search(q, 3)] for q, _ in queries]
        out[label] = {"hit@1": sum(bool(r) and r[0] in w for r, (_, w) in zip(ranks, queries, strict=True)) / len(queries),
                      "hit@3": sum(bool(set(r) & w) for r, (_, w) in zip(ranks, queries, strict=True)) / len(queries),
                      "queries": len(queries)}
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    rows: dict[str, dict[str, Any]] = {}
    all_docs: dict[str, ToolDoc] = {}
    with FakeOpenAI() as fake, tempfile.TemporaryDirectory() as tmp:
        for path in map(Path, args.configs):
            before = await one_request(path, fake, Path(tmp), ["tools.visible=['*']", "tools.search=false"])
            after = await one_request(path, fake, Path(tmp), [])
            all_docs.update({d.name: d for d in after.pop("docs")})
            before.pop("docs")
            rows[path.name] = {"before": before, "after": after}
    assert wait_for_model(), "MiniLM did not load"
    return {"requests": rows, "search": search_quality(list(all_docs.values()))}


def show(result: dict[str, Any]) -> None:
    table = Table(title="Tool schemas per LLM request (recorded, JSON characters)")
    for col in ("config", "tools before", "chars before", "tools after", "chars after", "request after"):
        table.add_column(col, justify="left" if col == "config" else "right")
    for name, row in result["requests"].items():
        b, a = row["before"], row["after"]
        table.add_row(name, str(b["tools"]), f"{b['chars']:,}", str(a["tools"]), f"{a['chars']:,}",
                      f"{a['request_chars']:,}")
    Console().print(table)
    search = Table(title="find_tools on everyday requests (all discovered tools)")
    for col in ("engine", "queries", "hit@1", "hit@3"):
        search.add_column(col, justify="left" if col == "engine" else "right")
    for label, score in result["search"].items():
        search.add_row(label, str(score["queries"]), f"{score['hit@1']:.0%}", f"{score['hit@3']:.0%}")
    Console().print(search)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=sorted(str(p) for p in (ROOT / "clients" / "examples").glob("*.yaml")))
    run_benchmark(parser, run, show)


if __name__ == "__main__":
    main()
