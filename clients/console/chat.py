"""Chat with the agent from the console: the same agent as `alphaavatar chat` (typed turns, recall,
memory writes, the character), one conversation per signed-in token and user, reaching the servers
of this process over MCP with that token. A reply streams as the LLM produces it, then comes what
was put in its context."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from mcp_servers.core.settings import Settings

log = logging.getLogger(__name__)
MAX_OPEN = 8  # conversations kept open; the least recently used beyond this is closed
INSTRUCTIONS = ("You are Alpha, a warm and concise assistant with a long-term memory. Answer in one to three "
                "sentences; use what you remember about the person when it helps.")


@dataclass
class Conversation:
    runtime: Any  # agent.pipeline.Runtime (imported on first chat: the agent is a heavy import)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    running: asyncio.Task[str] | None = None  # a turn whose reader left early still finishes first


class Chats:
    def __init__(self, base_url: str, settings: Settings):
        self.base_url, self.settings = base_url, settings
        self._open: OrderedDict[str, Conversation] = OrderedDict()
        self._starting = asyncio.Lock()

    def _config(self, token: str | None, owner: bool) -> Any:
        from agent.config import PipelineConfig

        s = self.settings
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        # the character is the owner's stage: a user token's chat goes on without it
        servers = ["memory", "persona", "research", *(["character"] if owner else [])]
        return PipelineConfig.model_validate({
            "avatar": {"id": s.avatar_id, "name": "Alpha", "instructions": INSTRUCTIONS},
            "llm": {"provider": "openai", "model": s.llm_model, "base_url": s.llm_base_url or "",
                    "api_key": s.llm_api_key.get_secret_value() if s.llm_api_key else "not-needed"},
            "mcp_servers": [{"name": n, "url": f"{self.base_url}/{n}/mcp", "headers": headers} for n in servers],
            "character": {"enabled": owner, "lip_sync": False},
            "turn": {"recall_budget_ms": 3000},  # a typed turn can wait longer for its recall than a spoken one
        })

    async def _conversation(self, token: str | None, owner: bool, user_id: str) -> Conversation:
        key = hashlib.sha256(f"{token}\0{user_id}".encode()).hexdigest()
        async with self._starting:
            if key not in self._open:
                from agent.pipeline import build_runtime, start_hub

                config = self._config(token, owner)
                hub, failures = await start_hub(config)
                if failures:
                    log.warning("chat: servers unavailable: %s", ", ".join(failures))
                runtime = build_runtime(config, hub, user_id=user_id, home=self.settings.home / "console" / "agent")
                await runtime.hooks.warm()
                await runtime.session.start(runtime.agent, record=False)
                self._open[key] = Conversation(runtime)
                while len(self._open) > MAX_OPEN:
                    _, old = self._open.popitem(last=False)
                    async with old.lock:  # a turn in progress finishes first
                        with contextlib.suppress(Exception):
                            await old.runtime.aclose()
                            await old.runtime.hub.aclose()
            self._open.move_to_end(key)
            return self._open[key]

    async def turn(self, token: str | None, owner: bool, user_id: str, text: str) -> AsyncIterator[dict[str, Any]]:
        """One typed turn: `{"delta": text}` events as the reply streams, then the reply and the
        memories and profile that were in its context."""
        conv = await self._conversation(token, owner, user_id)
        async with conv.lock:
            if conv.running is not None:
                await asyncio.wait([conv.running])
            deltas: asyncio.Queue[str] = asyncio.Queue()
            task = conv.running = asyncio.create_task(conv.runtime.agent.text_turn(text, deltas.put_nowait))
            while not task.done() or not deltas.empty():
                getter = asyncio.ensure_future(deltas.get())
                try:
                    await asyncio.wait([getter, task], return_when=asyncio.FIRST_COMPLETED)
                finally:
                    got = getter.done()
                    getter.cancel()  # a no-op once it has its piece
                if got:
                    yield {"delta": getter.result()}
            reply, prep = task.result(), conv.runtime.agent.last_prep
        recall = prep.recall if prep is not None else None
        yield {"reply": reply, "user_id": user_id,
               "memories": [m.model_dump() for m in (recall.memories if recall else [])],
               "profile": recall.profile if recall else None,
               "late": recall.late if recall else [], "failed": recall.failed if recall else []}
