"""Slow HTTP clients: they cannot hold the server, and they do not delay anyone else.

Three of these checks wait on the clock (the header deadline, the client pool's keep-alive expiry):
the two that need no test of their own to run first start with the module, each in a thread of
its own, and their tests collect the outcome, so the waits overlap instead of adding up.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import websockets

from mcp_servers.core.http_guard import HEADER_TIMEOUT_S, MAX_HEADER_BYTES
from tests.support import http_server, http_session, ok, server_env


def _healthz(port: int | None) -> bytes:
    return f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()


def _answer(s: socket.socket) -> bytes:
    """The head of one whole HTTP response read off a kept-alive connection (b"" if the server closed it)."""
    data = b""
    while b"\r\n\r\n" not in data:
        if not (chunk := s.recv(4096)):
            return b""
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
    while len(body) < length:
        body += s.recv(4096)
    return head


@pytest.fixture(scope="module")
def memory_http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One memory server over HTTP for the module: each test opens its own connections and leaves
    the server as it found it (answering /healthz), so none needs a fresh one."""
    with http_server(["serve", "memory", "--transport", "http"], server_env(tmp_path_factory.mktemp("hygiene"))) as base:
        yield base


class Started:
    """A check running in a thread of its own from now on; `outcome()` waits for it and raises what it raised."""

    def __init__(self, check: Callable[[], None]):
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(check,), daemon=True)
        self.thread.start()

    def _run(self, check: Callable[[], None]) -> None:
        try:
            check()
        except BaseException as exc:  # handed to the test that collects it
            self.error = exc

    def outcome(self, within: float = 180) -> None:
        self.thread.join(within)
        assert not self.thread.is_alive(), f"the check did not finish within {within:.0f} s"
        if self.error is not None:
            raise self.error


@pytest.fixture(scope="module", autouse=True)
def waiting(memory_http: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Started]:
    """The clock-bound checks, started as the module starts."""
    home = tmp_path_factory.mktemp("websocket")
    return {"idle": Started(lambda: idle_connection_outlives_the_pool(memory_http)),
            "websocket": Started(lambda: asyncio.run(websocket_outlives_the_header_deadline(home)))}


def test_slow_headers_are_cut_off_and_others_are_served(memory_http: str) -> None:
    base = memory_http
    port = urlsplit(base).port
    slow = []
    for i in range(50):  # each sends half a request line and headers, then nothing
        s = socket.create_connection(("127.0.0.1", port))
        if i % 2:  # the connection first serves a whole request: the next one's headers have a deadline too
            s.sendall(_healthz(port))
            assert _answer(s).startswith(b"HTTP/1.1 200 ")
        s.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        slow.append(s)
    assert httpx.get(f"{base}/healthz", timeout=10).status_code == 200
    opened = time.monotonic()
    for s in slow:
        s.settimeout(max(1.0, 40 - (time.monotonic() - opened)))
        assert s.recv(1024) == b"", "the server kept a connection whose headers never came"
        s.close()
    assert httpx.get(f"{base}/healthz", timeout=10).status_code == 200


def test_an_idle_kept_alive_connection_outlives_the_clients_pool(waiting: dict[str, Started]) -> None:
    """A client drops an idle pooled connection after a few seconds (httpx: 5): the server must not close it
    first, or a request sent on it at that moment fails unanswered."""
    waiting["idle"].outcome()


def idle_connection_outlives_the_pool(base: str) -> None:
    port = urlsplit(base).port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(_healthz(port))
        assert _answer(s).startswith(b"HTTP/1.1 200 ")
        time.sleep((httpx.Limits().keepalive_expiry or 5) + 3)
        s.sendall(_healthz(port))
        assert _answer(s).startswith(b"HTTP/1.1 200 ")


def test_a_websocket_outlives_the_header_deadline(waiting: dict[str, Started]) -> None:
    """The deadline is for headers that never come: an upgraded renderer stays connected."""
    waiting["websocket"].outcome()


async def websocket_outlives_the_header_deadline(home: Path) -> None:
    with http_server(["serve", "character", "--transport", "http"], server_env(home)) as base:
        async with websockets.connect(base.replace("http://", "ws://") + "/ws") as ws:
            await asyncio.sleep(HEADER_TIMEOUT_S + 2)
            async with http_session(f"{base}/mcp") as s:
                await ok(s, "character_express", {"emotion": "surprised"})
            while True:
                event = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if event.get("emotion") == "surprised":
                    break


def test_oversized_headers_get_431_and_others_are_served(memory_http: str) -> None:
    """httptools parses without a bound of its own: headers past the limit are refused, not buffered."""
    base = memory_http
    port = urlsplit(base).port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * (MAX_HEADER_BYTES + 1) + b"\r\n\r\n")
        answer = b""
        while chunk := s.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b"exceed 16 KiB" in answer
    assert httpx.get(f"{base}/healthz", headers={"X-Fine": "a" * 8000}, timeout=10).status_code == 200
