"""The agent in text mode for tests: `AgentSession` without a room, its LLM the fake OpenAI-compatible
server, its MCP servers real; and what the fake's recorded requests say."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from agent.config import PipelineConfig
from agent.mcp_sessions import McpHub
from agent.pipeline import Runtime, build_runtime
from tests.fakes.openai_server import FakeOpenAI


def user_text(body: dict[str, Any]) -> str:
    """The last user message of a chat request body, as text (JSON when it has parts)."""
    for m in reversed(body.get("messages", [])):
        if m.get("role") == "user":
            content = m.get("content")
            return content if isinstance(content, str) else json.dumps(content)
    return ""


def text_config(fake: FakeOpenAI, **sections: Any) -> PipelineConfig:
    """Tess on the fake LLM, no character, with `sections` (mcp_servers at least) added or replaced. The
    recall budget is generous: these tests check what is recalled, not how fast (bench/agent_turn.py)."""
    return PipelineConfig.model_validate({
        "avatar": {"id": "test", "name": "Tess", "instructions": "You are Tess."},
        "llm": {"provider": "openai", "model": "fake", "base_url": fake.base_url, "api_key": "k"},
        "character": {"enabled": False},
        "turn": {"recall_budget_ms": 20_000},
        **sections,
    })


@contextlib.asynccontextmanager
async def conversation(config: PipelineConfig, hub: McpHub, home: Path, user: str,
                       warm_all: bool = False) -> AsyncIterator[Runtime]:
    """One conversation with `user`, the agent's own state under `home`/agent. The servers load their
    models first; with `warm_all`, the agent's tool search model and the names it answers to too."""
    runtime = build_runtime(config, hub, user_id=user, home=home / "agent")
    await (runtime.warm() if warm_all else runtime.hooks.warm())
    await runtime.session.start(runtime.agent, record=False)
    try:
        yield runtime
    finally:
        await runtime.aclose()
