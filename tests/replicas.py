"""Replicas of one server on the Qdrant stand-in, behind a round-robin balancer: real processes.

`Deployment` starts the stand-in (its own process, as a Qdrant server is), `n` replica processes of
one server, each with its own `ALPHAAVATAR_HOME` (so nothing can be shared through a local disk),
and the balancer. Clients reach the balancer at `.mcp` or one replica at `.replica_mcp(i)`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
from mcp.client.client import Client

from tests.fakes.round_robin import RoundRobin
from tests.support import ALPHAAVATAR, Result, free_port

STATELESS = "2026-07-28"


def wait_up(url: str, proc: subprocess.Popen[Any], log: Path, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited {proc.returncode}: {log.read_text()[-4000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        if time.time() > deadline:
            raise TimeoutError(f"{url} did not answer")
        time.sleep(0.2)


@contextlib.contextmanager
def qdrant_stand_in(root: Path) -> Iterator[str]:
    """The stand-in in its own process; its URL."""
    port = free_port()
    log = root / "qdrant.log"
    root.mkdir(parents=True, exist_ok=True)
    with log.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "tests.fakes.qdrant_server", "--port", str(port)],
                                stdout=subprocess.DEVNULL, stderr=err, env={**os.environ, "PYTHONPATH": os.getcwd()})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_up(url, proc, log, 60)
        yield url
    finally:
        proc.terminate()
        proc.wait(15)


class Replica:
    def __init__(self, server: str, home: Path, env: dict[str, str]):
        self.server, self.home, self.env = server, home, env
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[Any] | None = None

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        log = self.home / f"server-{self.port}.log"
        with log.open("a") as err:
            self.proc = subprocess.Popen([ALPHAAVATAR, "serve", self.server, "--transport", "http", "--port", str(self.port)],
                                         env={**self.env, "ALPHAAVATAR_HOME": str(self.home)},
                                         stdout=subprocess.DEVNULL, stderr=err)

    def wait(self) -> None:
        assert self.proc is not None
        wait_up(f"{self.base}/healthz", self.proc, self.home / f"server-{self.port}.log")

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, as when a machine dies."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(15)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class Deployment:
    """`n` replicas of `server` on the stand-in at `qdrant_url`, behind one round-robin balancer."""

    def __init__(self, server: str, root: Path, qdrant_url: str, env: dict[str, str], n: int = 3):
        self.server = server
        self.replicas = [Replica(server, root / f"replica{i}", {**env, "QDRANT_URL": qdrant_url}) for i in range(n)]
        self.balancer = RoundRobin([r.base for r in self.replicas])

    def __enter__(self) -> Deployment:
        for r in self.replicas:  # started together: they load their models at the same time
            r.start()
        for r in self.replicas:
            r.wait()
        self.balancer.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.balancer.__exit__(*exc)
        for r in self.replicas:
            r.stop()

    @property
    def mcp(self) -> str:
        return f"{self.balancer.url}/mcp"

    def replica_mcp(self, i: int) -> str:
        return f"{self.replicas[i].base}/mcp"


@contextlib.asynccontextmanager
async def stateless(url: str, **options: Any) -> AsyncIterator[Client]:
    """An MCP client on the stateless 2026-07-28 revision (found by the `server/discover` probe, answered
    by whichever replica gets it): no session, every request stands alone. `options` go to the Client
    (e.g. an elicitation_callback)."""
    async with Client(url, mode="auto", **options) as client:
        assert client.protocol_version == STATELESS, client.protocol_version
        yield client


async def call(client: Client, tool: str, args: dict[str, Any] | None = None) -> Result:
    res = await client.call_tool(tool, args or {})
    text = "\n".join(getattr(c, "text", "") for c in res.content)
    return Result(res.structured_content, bool(res.is_error), text)


async def ok(client: Client, tool: str, args: dict[str, Any] | None = None) -> Any:
    r = await call(client, tool, args)
    assert not r.is_error, f"{tool}: {r.text}"
    return r.data
