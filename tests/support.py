"""Real MCP client sessions against our real servers, for every test module.

Servers run as the installed `alphaavatar` command in a subprocess, exactly as a host runs
them: over stdio (`stdio_session`) or over HTTP (`http_server` + `http_session`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import httpx2
import psutil
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

ALPHAAVATAR = str(Path(sys.executable).with_name("alphaavatar"))
ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DATASETS = Path(os.environ.get("ALPHAAVATAR_DATASETS", SHARED / "datasets"))


def heap_mb(proc: psutil.Process | None = None) -> float:
    """MB of a process's RSS not backed by a file (this process by default): its heap, where a leak or
    held memory shows; mapped store files and libraries are apart."""
    mem = (proc or psutil.Process()).memory_info()
    return (mem.rss - mem.shared) / 2**20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(home: Path, **extra: str) -> dict[str, str]:
    """A clean environment for a server: its own data root, no keys, no telemetry."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALPHAAVATAR_", "OPENAI_", "TAVILY_", "QDRANT_"))}
    env.update({"ALPHAAVATAR_HOME": str(home), "HF_HUB_OFFLINE": "1"})
    env.update(extra)
    return env


@dataclass
class Result:
    data: Any
    is_error: bool
    text: str


async def call(session: ClientSession, tool: str, args: dict[str, Any] | None = None, **kw: Any) -> Result:
    res = await session.call_tool(tool, args or {}, **kw)
    text = "\n".join(getattr(c, "text", "") for c in res.content)
    return Result(res.structured_content, bool(res.is_error), text)


async def ok(session: ClientSession, tool: str, args: dict[str, Any] | None = None, **kw: Any) -> Any:
    """The structured result of a call that must succeed."""
    r = await call(session, tool, args, **kw)
    assert not r.is_error, f"{tool}: {r.text}"
    return r.data


@contextlib.asynccontextmanager
async def stdio_session(server: str, env: dict[str, str]) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(command=ALPHAAVATAR, args=["serve", server, "--transport", "stdio"], env=env)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


@contextlib.asynccontextmanager
async def held_stdio_session(server: str, env: dict[str, str]) -> AsyncIterator[ClientSession]:
    """`stdio_session` for a module- or session-scoped fixture: pytest-asyncio sets a fixture up and
    tears it down in different tasks, and the SDK's anyio scopes must be left in the task that
    entered them, so the session lives in a task of its own, here opened and closed."""
    ready: asyncio.Future[ClientSession] = asyncio.get_running_loop().create_future()
    done = asyncio.Event()

    async def hold() -> None:
        try:
            async with stdio_session(server, env) as session:
                ready.set_result(session)
                await done.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            raise

    task = asyncio.create_task(hold())
    try:
        yield await ready
    finally:
        done.set()
        await task


@contextlib.contextmanager
def http_server(args: list[str], env: dict[str, str], port: int | None = None, timeout: float = 120,
                log: Path | None = None,
                until: Callable[[httpx.Response], bool] = lambda r: r.status_code == 200) -> Iterator[str]:
    """Run `alphaavatar ARGS --port P` and yield its base URL once /healthz answers (200, or `until`). Its
    stderr goes to `log` (a file, so a chatty server never blocks on a full pipe)."""
    port = port or free_port()
    log = log or Path(env.get("ALPHAAVATAR_HOME") or tempfile.mkdtemp()) / f"server-{port}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as err:
        proc = subprocess.Popen([ALPHAAVATAR, *args, "--port", str(port)], env=env,
                                stdout=subprocess.DEVNULL, stderr=err, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited {proc.returncode}: {log.read_text()[-4000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if until(httpx.get(f"{base}/healthz", timeout=1)):
                    break
            if time.time() > deadline:
                raise TimeoutError("server did not answer /healthz")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextlib.contextmanager
def up_with_tokens(home: Path, owner: str, users: dict[str, str]) -> Iterator[str]:
    """`alphaavatar up` on `home` answering the owner's token and these users' (token -> user id): its base URL."""
    env = server_env(home, ALPHAAVATAR_TOKEN=owner, ALPHAAVATAR_USER_TOKENS=json.dumps(users))
    with http_server(["up"], env) as url:
        yield url


@contextlib.asynccontextmanager
async def http_session(url: str, token: str | None = None, **options: Any) -> AsyncIterator[ClientSession]:
    """A 2025-11-25 session; `options` go to ClientSession (e.g. an elicitation_callback)."""
    headers = {"Authorization": f"Bearer {token}"} if token else None
    async with httpx2.AsyncClient(headers=headers, timeout=120) as http, streamable_http_client(
        url, http_client=http
    ) as streams, ClientSession(streams[0], streams[1], **options) as session:
        await session.initialize()
        yield session


def dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, default=str)


# What a tool error must not look like: a person can act on a sentence, not on these.
UNHELPFUL = [
    ("pydantic report", re.compile(r"validation errors? for \w+|\[type=\w+|input_value=|errors\.pydantic\.dev")),
    ("traceback", re.compile(r"Traceback \(most recent call last\)|File \"[^\"]+\", line \d+")),
    ("'internal error'", re.compile(r"\binternal (?:server )?error\b", re.I)),
    ("python repr", re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>")),
    ("exception type name", re.compile(r"\b[A-Z][A-Za-z0-9]*(?:Error|Exception)\b")),
    ("python internals", re.compile(r"NoneType|object has no attribute|not subscriptable|unhashable type|"
                                    r"positional argument|unexpected keyword argument|index out of range|"
                                    r"division by zero|recursion depth|codec can't|\[Errno -?\d+\]|"
                                    r"not JSON serializable|surrogates not allowed|object is not callable")),
]


def _strings(value: Any) -> list[str]:
    out: list[str] = []
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str) and len(v) >= 3:
            out.append(v)
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return sorted(out, key=len, reverse=True)


def unhelpful(text: str, tool: str, args: Any = None) -> str | None:
    """Why this error answer is not a sentence a person can act on, or None when it is.

    Strings of the request are taken out first: an answer may quote what it was sent."""
    body = re.sub(rf"^Error executing tool {re.escape(tool)}:?\s*", "", text.strip())
    for echoed in _strings(args)[:50]:
        body = body.replace(echoed, "")
    if not re.search(r"[A-Za-z]{3,}.*[A-Za-z]{3,}", body):
        return f"no sentence: {text[:200]!r}"
    for label, rx in UNHELPFUL:
        if rx.search(body):
            return f"{label}: {text[:300]!r}"
    return None
