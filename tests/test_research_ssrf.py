"""SSRF protection of the research server's own fetching, against a local HTTP server on loopback:
private, loopback, link-local (metadata) and IPv6 forms are refused, also behind a host name
and behind a redirect; loopback is reachable only through the explicit allowlist; size, time
and content-type limits hold."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import ClientSession
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from mcp_servers.research.netguard import why_blocked
from tests.fakes.background import BackgroundServer
from tests.support import call, server_env, stdio_session
from tests.test_research_corpus import tiny_pdf


class Site(BackgroundServer):
    """A small web site on 127.0.0.1 that records every path it is asked for."""

    def __init__(self) -> None:
        self.hits: list[str] = []

        async def page(request: Request) -> Response:
            self.hits.append(request.url.path)
            return HTMLResponse("<html><head><title>Loopback page</title></head><body><article><h1>Loopback page"
                                "</h1><p>Kingfishers dive for small fish from low branches over streams.</p>"
                                "</article></body></html>")

        async def redirect(request: Request) -> Response:
            self.hits.append(request.url.path)
            return RedirectResponse(request.query_params["to"], status_code=302)

        async def loop(request: Request) -> Response:
            self.hits.append(request.url.path)
            return RedirectResponse(f"/loop?n={int(request.query_params.get('n', 0)) + 1}", status_code=302)

        async def big(request: Request) -> Response:
            return HTMLResponse("<p>" + "x" * 50_000 + "</p>")

        async def stream_big(request: Request) -> Response:
            async def body():  # type: ignore[no-untyped-def]
                for _ in range(50):
                    yield b"<p>" + b"y" * 1000 + b"</p>"
            return StreamingResponse(body(), media_type="text/html")

        async def slow(request: Request) -> Response:
            await asyncio.sleep(5)
            return HTMLResponse("<p>late</p>")

        routes = [Route("/page", page), Route("/secret", page), Route("/redirect", redirect), Route("/loop", loop),
                  Route("/big", big), Route("/stream-big", stream_big), Route("/slow", slow),
                  Route("/image.png", lambda r: Response(b"\x89PNG\r\n\x1a\n", media_type="image/png")),
                  Route("/doc.pdf", lambda r: Response(tiny_pdf("Herons stand still in shallow water to hunt."),
                                                       media_type="application/pdf"))]
        super().__init__(Starlette(routes=routes))


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    with Site() as s:
        yield s


async def refused(s: ClientSession, url: str) -> str:
    r = await call(s, "web_extract", {"urls": [url]})
    assert r.is_error, f"{url} was fetched: {r.data}"
    assert "refused" in r.text.lower() and ("private" in r.text.lower() or "not allowed" in r.text.lower()), r.text
    r2 = await call(s, "corpus_add", {"url": url})
    assert r2.is_error and "refused" in r2.text.lower(), r2.text
    return r.text


def _loopback_name() -> str | None:
    """This machine's host name if it resolves to a loopback address (as /etc/hosts usually makes it)."""
    name = socket.gethostname()
    with contextlib.suppress(OSError):
        if name != "localhost" and all(ipaddress.ip_address(i[4][0]).is_loopback
                                       for i in socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)):
            return name
    return None


async def test_private_addresses_are_refused_without_a_request(tmp_path: Path, site: Site) -> None:
    p = site.port
    async with stdio_session("research", server_env(tmp_path)) as s:
        for url in [f"http://127.0.0.1:{p}/secret", f"http://localhost:{p}/secret", f"http://[::1]:{p}/secret",
                    "http://10.0.0.1/", "http://192.168.1.1/", "http://172.16.0.5/",
                    "http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/", "http://[fe80::1]/",
                    f"http://[::ffff:127.0.0.1]:{p}/secret", "http://0.0.0.0/", "http://100.100.100.200/",
                    "http://224.0.0.1/"]:
            await refused(s, url)
        name = _loopback_name()
        if name:  # a name, not a literal: refused once resolved, at connect time
            text = await refused(s, f"http://{name}:{p}/secret")
            assert "127." in text
        assert (await call(s, "corpus_list", {})).data["total"] == 0
    assert "/secret" not in site.hits


async def test_allowlisted_host_redirects_and_limits(tmp_path: Path, site: Site) -> None:
    p = site.port
    base = f"http://localhost:{p}"
    env = server_env(tmp_path, ALPHAAVATAR_RESEARCH_FETCH_ALLOWLIST=json.dumps(["localhost"]),
                     ALPHAAVATAR_RESEARCH_FETCH_MAX_BYTES="20000", ALPHAAVATAR_RESEARCH_FETCH_TIMEOUT_S="1.5",
                     ALPHAAVATAR_RESEARCH_FETCH_MAX_REDIRECTS="3")
    async with stdio_session("research", env) as s:
        got: Any = (await call(s, "web_extract", {"urls": [f"{base}/page", f"{base}/doc.pdf"]})).data
        assert [r["via"] for r in got["results"]] == ["fetch", "fetch"]
        assert got["results"][0]["title"] == "Loopback page" and "Kingfishers" in got["results"][0]["text"]
        assert "Herons" in got["results"][1]["text"]
        added = await call(s, "corpus_add", {"url": f"{base}/page"})
        assert not added.is_error and added.data["document"]["source_type"] == "url"

        # A redirect from the allowed host to anything private is refused before it is followed.
        for target in [f"http://127.0.0.1:{p}/secret", f"http://[::1]:{p}/secret", "http://10.0.0.1/",
                       "http://169.254.169.254/latest/meta-data/"]:
            await refused(s, f"{base}/redirect?to={target}")
        assert "/secret" not in site.hits

        for path, words in [("/big", "limit"), ("/stream-big", "limit"), ("/slow", "longer than"),
                            ("/image.png", "only html"), ("/loop", "redirects"), ("/missing", "404")]:
            r = await call(s, "web_extract", {"urls": [f"{base}{path}"]})
            assert r.is_error and words in r.text.lower(), (path, r.text)
        assert (await call(s, "corpus_list", {})).data["total"] == 1  # only the page that was readable


@pytest.mark.parametrize("address, blocked", [
    ("8.8.8.8", False), ("2606:4700:4700::1111", False),
    ("127.0.0.1", True), ("10.1.2.3", True), ("172.31.0.1", True), ("192.168.0.1", True),
    ("169.254.169.254", True), ("100.64.0.1", True), ("0.0.0.0", True), ("224.0.0.251", True),
    ("::1", True), ("::", True), ("fe80::1", True), ("fc00::1", True), ("ff02::1", True),
    ("::ffff:10.0.0.1", True), ("2002:7f00:1::", True), ("2001:0:4136:e378:8000:63bf:f5ff:fffe", True),
])
def test_address_classes(address: str, blocked: bool) -> None:
    assert (why_blocked(ipaddress.ip_address(address)) is not None) is blocked
