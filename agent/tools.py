"""Every tool the hub discovers, offered to the LLM as a livekit-agents toolset.

Arguments that name the user are pinned to the current speaker (and hidden from the LLM):
the model acts on behalf of whoever is talking, never on another user's data. Each call is
timed and handed to `on_call` so that the turn hooks can record it in tool memory.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from livekit.agents import llm
from livekit.agents.llm import ToolError, function_tool

from .hub import McpHub, ToolFailed, ToolUnavailable, result_data, result_text

log = logging.getLogger(__name__)

PINNED = ("user_id",)
RESULT_CHARS = 8000  # what the LLM sees of one result; bounded like any list we return


@dataclass
class ToolCall:
    tool: str
    server: str
    arguments: dict[str, Any]
    outcome: str
    success: bool
    latency_ms: float


def _schema_for_llm(schema: dict[str, Any]) -> dict[str, Any]:
    schema = copy.deepcopy(schema)
    props = schema.get("properties") or {}
    for key in PINNED:
        props.pop(key, None)
    if "required" in schema:
        schema["required"] = [r for r in schema["required"] if r not in PINNED]
    return schema


def _render(data: Any) -> str:
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, default=str)
    return text if len(text) <= RESULT_CHARS else text[:RESULT_CHARS] + " …(truncated)"


class HubToolset(llm.Toolset):
    """The hub's tools; rebuilt whenever a server's tool list changes."""

    def __init__(self, hub: McpHub, current_user: Callable[[], str | None],
                 on_call: Callable[[ToolCall], None] | None = None):
        super().__init__(id="mcp")
        self._hub = hub
        self._current_user = current_user
        self._on_call = on_call
        hub.on_change(self.rebuild)
        self.rebuild()

    def rebuild(self) -> None:
        self._tools = [self._make(entry.tool.name, entry.tool.description, entry.tool.input_schema)
                       for entry in self._hub.tools()]

    def _make(self, name: str, description: str | None, schema: dict[str, Any]) -> llm.RawFunctionTool:
        pinned = [k for k in PINNED if k in (schema.get("properties") or {})]

        async def call(raw_arguments: dict[str, Any]) -> str:
            arguments = dict(raw_arguments)
            for key in pinned:
                arguments.pop(key, None)
                if (user := self._current_user()) is not None:
                    arguments[key] = user
            link = self._hub.server_of(name)
            started = time.perf_counter()
            success, outcome = False, ""
            try:
                result = await self._hub.call(name, arguments)
                answer = _render(result_data(result))
                success, outcome = True, result_text(result) or answer
                return answer
            except (ToolUnavailable, ToolFailed) as exc:
                outcome = str(exc)
                log.warning("tool %s failed: %s", name, outcome)
                raise ToolError(outcome) from None
            finally:
                if self._on_call is not None:
                    self._on_call(ToolCall(name, link.name if link else "", arguments, outcome, success,
                                           (time.perf_counter() - started) * 1000))

        raw_schema = {"name": name, "description": description or name, "parameters": _schema_for_llm(schema)}
        return function_tool(call, raw_schema=raw_schema)
