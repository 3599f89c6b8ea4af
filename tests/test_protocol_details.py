"""Protocol details the official conformance suite checks (`make conformance` runs the suite itself).

An unknown prompt, a prompt without a required argument and an unknown tool are JSON-RPC errors
-32602 with a message, and nothing is logged as an error; a header value with whitespace around it
is the value without it (RFC 9110 §5.5); a 401 names its RFC 9728 resource metadata, which is
served without a token; an SSE answer opens with a priming event and a `retry`.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mcp.shared.exceptions import MCPError

from tests.support import http_server, http_session, server_env

TOKEN = "owner-secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def memory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    home = tmp_path_factory.mktemp("memory")
    log = home / "server.log"
    with http_server(["serve", "memory", "--transport", "http"], server_env(home, ALPHAAVATAR_TOKEN=TOKEN),
                     log=log) as base:
        yield base, log


async def test_unknown_prompt_missing_argument_and_unknown_tool_are_invalid_params(
        memory: tuple[str, Path]) -> None:
    base, log = memory
    async with http_session(f"{base}/mcp", TOKEN) as session:
        with pytest.raises(MCPError) as unknown:
            await session.get_prompt("no_such_prompt")
        assert unknown.value.error.code == -32602
        assert "no_such_prompt" in unknown.value.error.message and "recall" in unknown.value.error.message
        with pytest.raises(MCPError) as missing:
            await session.get_prompt("recall", {"user_id": "alice"})
        assert missing.value.error.code == -32602 and "topic" in missing.value.error.message
        with pytest.raises(MCPError) as tool:
            await session.call_tool("no_such_tool", {})
        assert tool.value.error.code == -32602 and "no_such_tool" in tool.value.error.message
        prompt = await session.get_prompt("recall", {"user_id": "alice", "topic": "music"})
        assert "alice" in str(prompt.messages[0].content)
    text = log.read_text()
    assert "Traceback" not in text and " ERROR " not in text, text[-2000:]


def _post(base: str, body: dict[str, object], headers: dict[str, str]) -> tuple[int, dict[str, object]]:
    """A POST written byte for byte (HTTP clients refuse to send whitespace around a header value)."""
    host, port = base.removeprefix("http://").split(":")
    data = json.dumps(body).encode()
    head = "".join(f"{k}: {v}\r\n" for k, v in {**headers, "Host": f"{host}:{port}", "Content-Type": "application/json",
                                                 "Content-Length": str(len(data)), "Connection": "close"}.items())
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(f"POST /mcp HTTP/1.1\r\n{head}\r\n".encode() + data)
        raw = b"".join(iter(lambda: s.recv(65536), b""))
    status = int(raw.split(b" ", 2)[1])
    payload = raw.split(b"\r\n\r\n", 1)[1]
    if b"transfer-encoding: chunked" in raw.split(b"\r\n\r\n", 1)[0].lower():
        payload = payload.split(b"\r\n", 1)[1].rsplit(b"\r\n0\r\n", 1)[0]
    return status, json.loads(payload)


def test_a_header_value_is_read_without_the_whitespace_around_it(memory: tuple[str, Path]) -> None:
    base, _ = memory
    version = "2026-07-28"
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "memory_list", "arguments": {},
                       "_meta": {"io.modelcontextprotocol/protocolVersion": version,
                                 "io.modelcontextprotocol/clientCapabilities": {}}}}
    headers = {**AUTH, "Accept": "application/json, text/event-stream", "MCP-Protocol-Version": version,
               "Mcp-Method": "tools/call"}
    for name in ("  memory_list  ", "memory_list\t", "memory_list "):
        status, answer = _post(base, body, {**headers, "Mcp-Name": name})
        assert status == 200 and "error" not in answer, (name, answer)
        assert answer["result"]["isError"] is False, answer  # type: ignore[index]
    status, wrong = _post(base, body, {**headers, "Mcp-Name": "memory_get"})
    assert status == 400 and wrong["error"]["code"] == -32020, wrong  # type: ignore[index]


def test_the_401_points_to_resource_metadata_served_without_a_token(memory: tuple[str, Path]) -> None:
    base, _ = memory
    refused = httpx.post(f"{base}/mcp", json={})
    assert refused.status_code == 401
    challenge = refused.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer resource_metadata=")
    url = challenge.split('resource_metadata="', 1)[1].rstrip('"')
    assert url == f"{base}/.well-known/oauth-protected-resource/mcp"
    meta = httpx.get(url)
    assert meta.status_code == 200
    doc = meta.json()
    assert doc["resource"] == f"{base}/mcp"
    assert doc["bearer_methods_supported"] == ["header"] and "authorization_servers" not in doc
    assert "No authorization server" in doc["alphaavatar_token_source"]
    assert httpx.get(f"{base}/.well-known/oauth-protected-resource").json()["resource"] == f"{base}/"


def test_an_sse_answer_opens_with_a_priming_event_and_retry(tmp_path: Path) -> None:
    with http_server(["serve", "research", "--transport", "http"], server_env(tmp_path)) as base:
        url = f"{base}/mcp"
        accept = {"Accept": "application/json, text/event-stream"}
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                           "clientInfo": {"name": "t", "version": "1"}}}
        with httpx.Client(timeout=60) as http:
            first = http.post(url, json=init, headers=accept)
            session = {**accept, "Mcp-Session-Id": first.headers["mcp-session-id"],
                       "MCP-Protocol-Version": "2025-11-25"}
            http.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=session)
            call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                    "params": {"name": "research_audit_list", "arguments": {}}}
            answer = http.post(url, json=call, headers=session)
        assert answer.headers["content-type"].startswith("text/event-stream")
        events = [dict(line.split(": ", 1) if ": " in line else (line.rstrip(":"), "")
                       for line in block.splitlines()) for block in answer.text.strip().split("\r\n\r\n")]
        assert events[0].get("id") and events[0].get("retry") == "1000" and events[0].get("data", "") == ""
        result = json.loads(events[-1]["data"])
        assert result["id"] == 2 and result["result"]["isError"] is False
