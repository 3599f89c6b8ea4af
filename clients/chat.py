"""`alphaavatar chat CONFIG.yaml [--user NAME]`: the agent in a terminal, no LiveKit needed.

The same agent, hooks and MCP servers as a voice session, with typed turns. On a terminal it
is a prompt; when stdin is not a terminal it reads one user turn per line and prints each reply
on its own line, so it can be scripted. Memory writes are flushed before it exits. Its log and its
servers' go to `$ALPHAAVATAR_HOME/agent/logs/` (to stderr with --verbose).
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

from agent.config import ConfigError
from agent.config_file import load_config
from agent.pipeline import agent_home, build_runtime, start_hub
from mcp_servers.core.llm import llm_failed

log = logging.getLogger(__name__)


def _server_hint(config_path: Path, name: str) -> str:
    return (f"  MCP server '{name}' is not reachable: fix its entry under mcp_servers in {config_path} "
            "(command or url), or remove it; the chat goes on without its tools.")


class Lines:
    """User turns from stdin. Piped input is read ahead in the background, and each line's recall
    starts as soon as the line arrives (`on_line`), so a turn waits only for what is still missing."""

    def __init__(self, interactive: bool, on_line: Callable[[str], object]):
        self.interactive = interactive
        self._on_line = on_line
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None

    def start(self) -> None:
        if not self.interactive:
            self._reader = asyncio.create_task(self._read_ahead())

    async def _read_ahead(self) -> None:
        loop = asyncio.get_running_loop()
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            if line.strip():
                self._on_line(line.strip())
                self._queue.put_nowait(line.strip())
        self._queue.put_nowait(None)

    async def next(self, prompt: str) -> str | None:
        """The next non-empty line, None at the end of input."""
        if not self.interactive:
            return await self._queue.get()
        while True:
            try:
                line = await asyncio.get_running_loop().run_in_executor(None, input, prompt)
            except EOFError:
                return None
            if line.strip():
                return line.strip()


def _write(piece: str) -> None:
    print(piece, end="", flush=True)


async def chat(config_path: Path, user: str | None, overrides: list[str], verbose: bool) -> int:
    config = load_config(config_path, overrides)
    user_id = user or getpass.getuser()
    hub, failures = await start_hub(config, log_dir=None if verbose else agent_home() / "logs")
    for name, error in failures.items():
        print(f"{_server_hint(config_path, name)}\n    ({error})", file=sys.stderr)
    runtime = build_runtime(config, hub, user_id=user_id)
    lines = Lines(sys.stdin.isatty(), runtime.hooks.prefetch)
    try:
        lines.start()
        await runtime.warm()
        await runtime.session.start(runtime.agent, record=False)
        if lines.interactive:
            logs = "" if verbose else f"; logs in {agent_home() / 'logs'}"
            print(f"{config.avatar.name} is listening as {user_id} (Ctrl-D to quit{logs}).", file=sys.stderr)
        while (text := await lines.next("you> ")) is not None:
            if lines.interactive:  # the reply is written as the LLM produces it
                print(f"{config.avatar.name}> ", end="", flush=True)
            asked_from = time.monotonic()
            try:
                reply = await runtime.agent.text_turn(text, _write if lines.interactive else None)
                question = runtime.agent.toolset.consent.waiting(user_id, since=asked_from)
                if question is not None and question not in reply:  # the person reads it whatever the model wrote
                    reply += f" {question}"
                    if lines.interactive:
                        _write(f" {question}")
            except Exception as exc:  # an LLM outage must not end the chat
                log.warning("turn failed: %r", exc)
                reply = f"(no reply: {llm_failed(exc)})"
                if lines.interactive:
                    _write(reply)
            if lines.interactive:
                print(flush=True)
            else:
                print(" ".join(reply.split()), flush=True)
    finally:
        await runtime.aclose()
        await hub.aclose()
        pending = runtime.hooks.writer.pending if runtime.hooks.writer else 0
        if pending:
            print(f"{pending} memory writes could not be delivered; they will be sent on the next start.",
                  file=sys.stderr)
    return 0


def _log_handler(verbose: bool) -> logging.Handler:
    """Where the chat's own log goes: stderr with --verbose, else `<agent home>/logs/chat.log` beside
    its servers' logs. Not the terminal: a record written there while a reply streams in splits the
    reply (a server's retries are logged every 30 s), and the person was told at start which servers
    are missing; the chat says itself what else they need (a failed turn, undelivered writes)."""
    handler: logging.Handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    if not verbose:
        path = agent_home() / "logs" / "chat.log"
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            handler = logging.FileHandler(path, encoding="utf-8")
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    return handler


def main(config_path: Path, user: str | None, overrides: list[str], verbose: bool = False) -> int:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[_log_handler(verbose)])
    if not verbose:
        for noisy in ("livekit", "livekit.agents", "mcp", "httpx"):
            logging.getLogger(noisy).setLevel(logging.ERROR)
    try:
        return asyncio.run(chat(config_path, user, overrides, verbose))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        with contextlib.suppress(Exception):
            print("", file=sys.stderr)
        return 130
