"""The MCP hub: one supervised client session per configured server.

Sessions start concurrently and reconnect with back-off; a `tools/list_changed` notification
refreshes the tool list; every call has a timeout. A server that is down never crashes the
agent: calls raise `ToolUnavailable` with a sentence the LLM can repeat to the user.

HTTP/SSE transports come from livekit-agents' MCP integration (`MCPServerHTTP`), stdio from the
MCP SDK (so a server's stderr can go to a log file); the supervision around them is ours,
because livekit's neither reconnects nor refreshes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import anyio
import mcp.types as types
from livekit.agents.llm.mcp import MCPServerHTTP
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.dispatcher import ProgressFnT
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError

from .config import McpServerConfig
from .consent import Consent
from .contracts import ACT_AS, CALL_MARK, View

log = logging.getLogger(__name__)

BACKOFF_MIN, BACKOFF_MAX = 0.5, 30.0
PING_INTERVAL = 5.0


V = TypeVar("V", bound=View)


class ToolUnavailable(Exception):
    """A call that could not be made or did not finish (server down, timeout, protocol error)."""


class ToolFailed(Exception):
    """The tool ran and reported an error (`isError`); the message is the server's."""


@dataclass
class HubTool:
    server: str
    tool: types.Tool


def _streams(config: McpServerConfig, env: dict[str, str], log_dir: Path | None) -> Any:
    """The transport's stream pair (an async context manager). A stdio server's stderr goes to
    `log_dir/<name>.log` when given, else to ours."""
    if config.command:
        params = StdioServerParameters(command=config.executable() or config.command[0], args=config.command[1:],
                                       env={**env, **config.env}, cwd=config.cwd)
        if log_dir is None:
            return stdio_client(params)
        return _logged_stdio(params, log_dir / f"{config.name}.log")
    assert config.url
    http = MCPServerHTTP(config.url, transport_type="sse" if config.transport == "sse" else "streamable_http",
                         headers=config.headers, timeout=config.connect_timeout)
    return http.client_streams()


@contextlib.asynccontextmanager
async def _logged_stdio(params: StdioServerParameters, path: Path) -> AsyncIterator[Any]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as errlog:
        async with stdio_client(params, errlog=errlog) as streams:
            yield streams


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in exc.exceptions)
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__


async def _diagnose(config: McpServerConfig, error: str) -> str:
    """Say what is wrong with an HTTP server the MCP client could not reach (the SDK drops the
    status): nothing listening, or a status such as 401 that names the fix."""
    if not config.url:
        return error
    import httpx

    try:
        async with httpx.AsyncClient(timeout=5) as http:
            response = await http.post(config.url, headers={**config.headers, "Accept": "application/json, text/event-stream"},
                                       json={"jsonrpc": "2.0", "id": 0, "method": "ping"})
    except httpx.HTTPError:
        return f"nothing answers at {config.url} (is the server running?)"
    if response.status_code in (401, 403):
        return f"HTTP {response.status_code} from {config.url}: check the token in this server's headers"
    if response.status_code >= 400:
        return f"HTTP {response.status_code} from {config.url}: {error}"
    return error


class ServerLink:
    """One configured server: a background task keeps a live `ClientSession` to it."""

    def __init__(self, config: McpServerConfig, env: dict[str, str], on_change: Callable[[], None],
                 log_dir: Path | None = None, on_elicit: Any = None):
        self.config = config
        self._on_elicit = on_elicit
        self.name = config.name
        self._env = env
        self._log_dir = log_dir
        self._on_change = on_change
        self.session: ClientSession | None = None
        self.tools: list[types.Tool] = []  # the last known list, kept while reconnecting
        self.error: str | None = None
        self.ready = asyncio.Event()
        self.first_attempt = asyncio.Event()
        self._lost = asyncio.Event()
        self._refresh = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name=f"mcp:{self.name}")

    async def aclose(self, grace: float = 10.0) -> None:
        """Leave the session the orderly way (a stdio server sees its stdin close and shuts down
        cleanly); cancel only if that takes longer than `grace` seconds."""
        self._closing = True
        self._lost.set()
        if self._task:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), grace)
            except (TimeoutError, Exception):
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._task

    async def _supervise(self) -> None:
        delay = BACKOFF_MIN
        while not self._closing:
            try:
                await self._connect_once()
                delay = BACKOFF_MIN  # it was up: retry quickly
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # a transport failure must not end the supervisor
                self.error = await _diagnose(self.config, _describe(exc))
                log.warning("MCP server %s unavailable: %s (retrying in %.1fs)", self.name, self.error, delay)
            finally:
                self.session = None
                self.ready.clear()
                self.first_attempt.set()
            if self._closing:
                break
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)

    async def _connect_once(self) -> None:
        async with _streams(self.config, self._env, self._log_dir) as streams, ClientSession(
            streams[0], streams[1], message_handler=self._on_message, elicitation_callback=self._on_elicit
        ) as session:
            with anyio.fail_after(self.config.connect_timeout):
                await session.initialize()
                await self._load_tools(session)
            self.session, self.error = session, None
            if not self._closing:
                self._lost.clear()
            self.ready.set()
            self.first_attempt.set()
            log.info("MCP server %s connected: %d tools", self.name, len(self.tools))
            await self._watch(session)

    async def _load_tools(self, session: ClientSession) -> None:
        tools: list[types.Tool] = []
        cursor: str | None = None
        while True:
            params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
            page = await session.list_tools(params=params)
            tools.extend(t for t in page.tools if t.name not in self.config.exclude_tools)
            cursor = page.next_cursor
            if not cursor:
                break
        self.tools = tools
        self._on_change()

    async def _watch(self, session: ClientSession) -> None:
        """Return when the connection is lost; refresh tools when the server says they changed."""
        while not self._lost.is_set():
            refresh = asyncio.ensure_future(self._refresh.wait())
            lost = asyncio.ensure_future(self._lost.wait())
            try:
                await asyncio.wait({refresh, lost}, timeout=PING_INTERVAL, return_when=asyncio.FIRST_COMPLETED)
            finally:
                refresh.cancel()
                lost.cancel()
            if self._lost.is_set():
                break
            try:
                with anyio.fail_after(self.config.timeout):
                    if self._refresh.is_set():
                        self._refresh.clear()
                        await self._load_tools(session)
                        log.info("MCP server %s: tools refreshed (%d)", self.name, len(self.tools))
                    else:
                        await session.send_ping()
            except (TimeoutError, MCPError, anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
                self.mark_lost(f"connection lost ({_describe(exc)})")
                break
        if not self._closing:
            log.warning("MCP server %s disconnected: %s", self.name, self.error or "connection closed")

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            self._refresh.set()
        elif isinstance(message, Exception):
            log.debug("MCP server %s transport error: %s", self.name, message)

    def mark_lost(self, reason: str) -> None:
        """The connection is gone: calls fail fast and `ready` waits for the reconnection."""
        self.error = reason
        self.session = None
        self.ready.clear()
        self._lost.set()

    async def call(self, tool: str, arguments: dict[str, Any], time_limit: float | None = None,
                   progress: ProgressFnT | None = None, meta: dict[str, Any] | None = None) -> types.CallToolResult:
        """Call a tool; raises ToolUnavailable at once when the server is down, or when it does not
        answer in time (a voice turn must not wait for a reconnection). `progress` receives the
        tool's progress notifications; `meta` goes in the request's `_meta`."""
        timeout = time_limit or self.config.timeout
        session = self.session
        if session is None:
            raise ToolUnavailable(f"the {self.name} server is unavailable ({self.error or 'starting'}); "
                                  "it is reconnecting, try again shortly")
        try:
            with anyio.fail_after(timeout):
                return await session.call_tool(tool, arguments, read_timeout_seconds=timeout, progress_callback=progress,
                                               meta=meta)  # type: ignore[arg-type]
        except TimeoutError:
            raise ToolUnavailable(f"{tool} on the {self.name} server did not answer within {timeout:g}s") from None
        except MCPError as exc:
            if exc.code == types.CONNECTION_CLOSED:
                self.mark_lost("connection closed")
                raise ToolUnavailable(f"the {self.name} server stopped while running {tool}; "
                                      "it is reconnecting, try again shortly") from None
            raise ToolUnavailable(f"{tool} on the {self.name} server failed: {exc.error.message}") from None
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            self.mark_lost("connection closed")
            raise ToolUnavailable(f"the {self.name} server connection broke; it is reconnecting") from None


def result_text(result: types.CallToolResult) -> str:
    """The text a person would read: the call's text content."""
    return "\n".join(getattr(c, "text", "") for c in result.content)


def result_data(result: types.CallToolResult) -> Any:
    """The structured output of a call, or its text; raises ToolFailed on a tool error."""
    text = result_text(result)
    if result.is_error:
        raise ToolFailed(text or "the tool reported an error")
    return result.structured_content if result.structured_content is not None else text


class McpHub:
    """All configured servers, and their tools by name."""

    def __init__(self, servers: list[McpServerConfig], env: dict[str, str] | None = None,
                 log_dir: Path | None = None):
        env = dict(os.environ) if env is None else env
        self.links = {s.name: ServerLink(s, env, self._changed, log_dir, self._answer) for s in servers}
        self._listeners: list[Callable[[], None]] = []
        self._index: dict[str, HubTool] = {}
        self._delegated: dict[str, tuple[str, Consent | None]] = {}  # call mark -> (speaker, their consent)

    def on_change(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def _changed(self) -> None:
        index: dict[str, HubTool] = {}
        for link in self.links.values():
            for tool in link.tools:
                if tool.name in index:
                    log.warning("tool %s is offered by both %s and %s; using %s", tool.name,
                                index[tool.name].server, link.name, index[tool.name].server)
                    continue
                index[tool.name] = HubTool(link.name, tool)
        self._index = index
        for listener in self._listeners:
            listener()

    async def start(self, wait: float | None = None) -> dict[str, str]:
        """Start every session at once; wait for each one's first attempt. Returns failures by server."""
        for link in self.links.values():
            link.start()
        timeout = wait if wait is not None else max((s.config.connect_timeout for s in self.links.values()), default=0)
        if self.links:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*(k.first_attempt.wait() for k in self.links.values())), timeout)
        return {k.name: (k.error or "did not connect in time") for k in self.links.values() if not k.ready.is_set()}

    async def aclose(self) -> None:
        await asyncio.gather(*(link.aclose() for link in self.links.values()))

    def tools(self) -> list[HubTool]:
        return list(self._index.values())

    def has(self, tool: str) -> bool:
        return tool in self._index

    def server_of(self, tool: str) -> ServerLink | None:
        entry = self._index.get(tool)
        return self.links[entry.server] if entry else None

    async def call(self, tool: str, arguments: dict[str, Any], time_limit: float | None = None,
                   progress: ProgressFnT | None = None, act_as: str | None = None,
                   consent: Consent | None = None) -> types.CallToolResult:
        """Call a tool as the owner, or with `act_as` as that user (the servers enforce the user's
        rights; a destructive call then waits for that user's yes in `consent`)."""
        link = self.server_of(tool)
        if link is None:
            raise ToolUnavailable(f"no configured MCP server offers the tool {tool}")
        if act_as is None:
            return await link.call(tool, arguments, time_limit=time_limit, progress=progress)
        mark = uuid.uuid4().hex
        self._delegated[mark] = (act_as, consent)
        try:
            return await link.call(tool, arguments, time_limit=time_limit, progress=progress,
                                   meta={ACT_AS: act_as, CALL_MARK: mark})
        finally:
            self._delegated.pop(mark, None)

    async def _answer(self, context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        """A server asks before a destructive call: the agent's own calls are its code's decision;
        a call for a speaker is that speaker's to confirm (`Consent`), never the model's."""
        meta = params.meta or {}
        schema = getattr(params, "requested_schema", None) or {}
        if (schema.get("properties") or {}).get("confirm", {}).get("type") != "boolean":
            return types.ElicitResult(action="decline")  # a question the agent cannot answer for anyone
        delegated = self._delegated.get(str(meta.get(CALL_MARK, "")))
        if delegated is None:
            own = ACT_AS not in meta
            return types.ElicitResult(action="accept", content={"confirm": True}) if own else \
                types.ElicitResult(action="decline")
        user, consent = delegated
        if consent is not None and meta.get(ACT_AS) == user and consent.answer(user, params.message):
            return types.ElicitResult(action="accept", content={"confirm": True})
        return types.ElicitResult(action="decline")

    async def call_data(self, tool: str, arguments: dict[str, Any], time_limit: float | None = None) -> Any:
        """Call and return structured data; raises ToolUnavailable or ToolFailed."""
        started = time.perf_counter()
        try:
            return result_data(await self.call(tool, arguments, time_limit=time_limit))
        finally:
            log.debug("%s took %.1f ms", tool, (time.perf_counter() - started) * 1000)

    async def call_view(self, tool: str, arguments: dict[str, Any], view: type[V],
                        time_limit: float | None = None) -> V:
        """Call and read the output through the agent's view of it (agent.contracts); an output
        that does not fit is a ToolFailed that names the fields, like any other failed call."""
        data = await self.call_data(tool, arguments, time_limit=time_limit)
        try:
            return view.model_validate(data)
        except ValidationError as exc:
            where = ", ".join(".".join(map(str, e["loc"])) or "(output)" for e in exc.errors()[:5])
            raise ToolFailed(f"{tool} answered in a shape the agent cannot read ({view.__name__}: {where})") from None
