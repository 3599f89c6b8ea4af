"""Malformed transport input: the server answers what it can, stays up, and serves everyone else.

Stdio: garbage, oversize, non-JSON-RPC, invalid UTF-8, lone-surrogate and too-deeply-nested
lines each get a JSON-RPC error (with the request's id when it can be read) and the next valid
request is answered. HTTP: the same bodies get 4xx answers, a 50 MB body is refused with 413,
and clients that open many sessions and never read, or stall mid-request, do not stop a normal
client from working. Streamable HTTP answers a call with one JSON body, except on servers
whose tools stream progress (their SSE stream carries it).
"""

from __future__ import annotations

import asyncio
import json
import queue
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import ALPHAAVATAR, call, http_server, http_session, server_env, unhelpful

INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
PING = b'{"jsonrpc":"2.0","id":"ping","method":"ping"}'
DEEP = b'{"jsonrpc":"2.0","id":41,"method":"tools/call","params":{"name":"character_status","arguments":{"a":' + (
    b'{"a":' * 5000 + b"1" + b"}" * 5000) + b"}}}"
BAD_LINES: list[tuple[str, bytes, Any, int]] = [  # (what, line, id of the answer, JSON-RPC code)
    ("garbage", b"hello?", None, -32700),
    ("a 20 MB line", b"A" * 20_000_000, None, -32700),
    ("JSON, not JSON-RPC", b"[1, 2, 3]", None, -32600),
    ("a request without a method", b'{"jsonrpc":"2.0","id":5}', 5, -32600),
    ("JSON-RPC 1.0", b'{"jsonrpc":"1.0","id":6,"method":"ping"}', 6, -32600),
    ("a lone surrogate", b'{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"character_speak",'
                         b'"arguments":{"text":"a\\ud800b"}}}', 7, -32700),
    ("nesting 5000 deep", DEEP, 41, -32700),
    ("arguments as a list", b'{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"character_status",'
                            b'"arguments":[]}}', 8, -32602),
    ("an unknown method", b'{"jsonrpc":"2.0","id":9,"method":"nope"}', 9, -32601),
]


class StdioServer:
    """A server process driven line by line, as a host's transport would."""

    def __init__(self, server: str, home: Path):
        self.proc = subprocess.Popen([ALPHAAVATAR, "serve", server, "--transport", "stdio"], env=server_env(home),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.lines: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def send(self, line: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + b"\n")
        self.proc.stdin.flush()

    def answer(self, timeout: float = 60) -> dict[str, Any]:
        return dict(json.loads(self.lines.get(timeout=timeout)))

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(30)


@pytest.fixture(scope="module")
def stdio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StdioServer]:
    server = StdioServer("character", tmp_path_factory.mktemp("stdio"))
    server.send(json.dumps(INIT).encode())
    assert server.answer()["id"] == 1
    server.send(b'{"jsonrpc":"2.0","method":"notifications/initialized"}')
    yield server
    server.close()


@pytest.mark.parametrize(("what", "line", "rid", "code"), BAD_LINES, ids=[b[0] for b in BAD_LINES])
def test_stdio_answers_a_bad_line_and_keeps_serving(stdio: StdioServer, what: str, line: bytes, rid: Any,
                                                    code: int) -> None:
    stdio.send(line)
    stdio.send(PING)
    err, pong = stdio.answer(), stdio.answer()
    assert err.get("id") == rid and err["error"]["code"] == code, (what, err)
    assert unhelpful(f"{err['error']['message']} {err['error'].get('data', '')}", "") is None, err
    assert pong == {"jsonrpc": "2.0", "id": "ping", "result": {}}
    assert stdio.proc.poll() is None


def test_stdio_takes_invalid_utf8_as_replacement_characters(stdio: StdioServer) -> None:
    stdio.send(b'{"jsonrpc":"2.0","id":12,"method":"tools/call","params":{"name":"character_state",'
               b'"arguments":{"state":"li\xffstening"}}}')
    r = stdio.answer()
    assert r["id"] == 12 and r["result"]["isError"], r
    assert "listening" in r["result"]["content"][0]["text"]  # the choices, in words


@pytest.fixture(scope="module")
def http_base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with http_server(["serve", "character", "--transport", "http"], server_env(tmp_path_factory.mktemp("http"))) as base:
        yield base


HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


async def test_http_refuses_bad_bodies_with_4xx(http_base: str) -> None:
    async with httpx.AsyncClient(timeout=60) as http:
        for what, body in [("not JSON", b"hello?"), ("invalid UTF-8", b'{"jsonrpc":"2.0","id":1,"method":"\xff"}'),
                           ("a lone surrogate", b'{"jsonrpc":"2.0","id":1,"method":"a\\ud800"}'),
                           ("nesting 5000 deep", DEEP), ("JSON, not JSON-RPC", b"[1,2,3]")]:
            r = await http.post(f"{http_base}/mcp", content=body, headers=HEADERS)
            assert 400 <= r.status_code < 500, (what, r.status_code, r.text[:200])
        big = await http.post(f"{http_base}/mcp", content=b'{"x":"' + b"A" * 50_000_000 + b'"}', headers=HEADERS)
        assert big.status_code == 413, big.status_code
        async with http_session(f"{http_base}/mcp") as s:  # and it still serves
            assert not (await call(s, "character_status")).is_error


async def _hold(port: int, request: bytes) -> asyncio.StreamWriter:
    """A connection that sends `request` and never reads what comes back."""
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    return writer


async def test_http_clients_that_never_read_do_not_stop_others(http_base: str) -> None:
    port = int(http_base.rsplit(":", 1)[1])
    body = json.dumps(INIT).encode()
    init = (f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Accept: application/json, text/event-stream\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    stalled = f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 1000\r\n\r\n{{".encode()
    held = [await _hold(port, init) for _ in range(150)]  # 150 sessions opened, answers never read
    held += [await _hold(port, stalled) for _ in range(50)]  # 50 requests that stop mid-body
    try:
        async with http_session(f"{http_base}/mcp") as s:
            for _ in range(3):
                r = await call(s, "character_state", {"state": "thinking"})
                assert not r.is_error, r.text
        async with httpx.AsyncClient(timeout=30) as http:
            assert (await http.get(f"{http_base}/healthz")).status_code == 200
    finally:
        for w in held:
            w.close()


async def _content_type(http: httpx.AsyncClient, url: str, call: dict[str, Any]) -> str:
    """The content type streamable HTTP answers a tools/call with (after initialize, raw)."""
    hdr = dict(HEADERS)
    r = await http.post(url, json=INIT, headers=hdr)
    hdr |= {"mcp-session-id": r.headers["mcp-session-id"], "mcp-protocol-version": "2025-06-18"}
    await http.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=hdr)
    r = await http.post(url, json={"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": call}, headers=hdr)
    assert r.status_code == 200 and '"id":2' in r.text.replace(" ", ""), r.text[:300]
    return r.headers["content-type"]


async def test_calls_answer_json_unless_their_server_streams_progress(tmp_path: Path) -> None:
    """Character answers a call with one JSON body (cheaper); memory streams (its erasing tools ask
    for a yes mid-call), research too, and its progress arrives."""
    with http_server(["serve", "character", "--transport", "http"], server_env(tmp_path / "c")) as base:
        async with httpx.AsyncClient(timeout=60) as http:
            kind = await _content_type(http, f"{base}/mcp", {"name": "character_status", "arguments": {}})
        assert kind.startswith("application/json"), kind
    with http_server(["serve", "memory", "--transport", "http"], server_env(tmp_path / "m")) as base:
        async with httpx.AsyncClient(timeout=60) as http:
            kind = await _content_type(http, f"{base}/mcp", {"name": "memory_list", "arguments": {"user_id": "u"}})
        assert kind.startswith("text/event-stream"), kind
    with http_server(["serve", "research", "--transport", "http"], server_env(tmp_path / "r")) as base:
        async with httpx.AsyncClient(timeout=60) as http:
            kind = await _content_type(http, f"{base}/mcp", {"name": "corpus_list", "arguments": {}})
        assert kind.startswith("text/event-stream"), kind
        async with http_session(f"{base}/mcp") as s:
            await s.call_tool("corpus_add", {"text": "Zebras sleep standing up in the savanna.", "title": "Zebras"})
            seen: list[str | None] = []

            async def on_progress(done: float, total: float | None, message: str | None) -> None:
                seen.append(message)

            res = await s.call_tool("research", {"question": "How do zebras sleep?", "sources": "corpus"},
                                    progress_callback=on_progress)
        assert not res.is_error, res.content
        assert seen and all(seen), seen
