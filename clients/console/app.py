"""The console's HTTP side: static pages and a small JSON API that relays to the servers over MCP.

Every request passes the runner's DNS-rebinding guard, as the MCP routes do; every API request needs the
signed-in bearer token (when tokens are configured), and every state-changing one also an
`X-CSRF-Token` header (derived from that token, read by the page from `/api/session`) and a
same-origin `Origin`. The token travels only in the `Authorization` header.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from clients import __version__
from mcp_servers.core import auth
from mcp_servers.core.llm import llm_failed, llm_unavailable
from mcp_servers.core.settings import Settings

from .chat import Chats
from .export import ExportError, check, export_stream
from .mcp_client import SERVERS, call, session

log = logging.getLogger(__name__)
STATIC = Path(__file__).with_name("static")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "media-src 'self' blob:; connect-src 'self'; frame-src 'self'; base-uri 'none'; form-action 'none'; "
       "frame-ancestors 'self'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "Permissions-Policy": "microphone=(self), camera=(self), geolocation=()", "Cache-Control": "no-store"}
UPLOAD_SUFFIXES = (".pdf", ".txt", ".md", ".html", ".htm")
MAX_UPLOAD = 20_000_000
MAX_BODY = 30_000_000  # a 20 MB file or clip, base64-encoded, in JSON

Handler = Callable[[Request], Awaitable[Response]]


def upload_dir(settings: Settings) -> Path:
    """Where an uploaded document waits for corpus_add (which reads files only under allowed roots)."""
    return settings.home / "console" / "uploads"


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"error": detail}, status_code=status, headers=HEADERS)


class TooLarge(Exception):
    pass


async def _json(request: Request, limit: int = MAX_BODY) -> Any:
    """The request's JSON body, read no further than `limit` bytes (TooLarge beyond)."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise TooLarge
    return json.loads(body)


def routes(base_url: str, settings: Settings) -> list[BaseRoute]:
    """The console's routes, relaying to the servers at `base_url` (this process)."""
    secret = secrets.token_bytes(32)
    chats = Chats(base_url, settings)

    def csrf_for(token: str | None) -> str:
        return hmac.new(secret, (token or "").encode(), hashlib.sha256).hexdigest()

    def token_of(request: Request) -> str | None:
        value = request.headers.get("authorization", "")
        return value[7:].strip() if value.lower().startswith("bearer ") else None

    def guarded(handler: Handler, api: bool = True, changes: bool = False) -> Handler:
        async def endpoint(request: Request) -> Response:
            if api:
                token = token_of(request)
                if auth.auth_required(settings) and auth.principal_for(token, settings) is None:
                    return _error(401, "Sign in with a valid token.")
                if changes:
                    origin = request.headers.get("origin")
                    same = f"{request.url.scheme}://{request.headers.get('host', '')}"
                    if origin != same:
                        return _error(403, "Cross-site request refused (Origin).")
                    given = request.headers.get("x-csrf-token", "").encode("latin-1")
                    if not hmac.compare_digest(given, csrf_for(token).encode()):
                        return _error(403, "Cross-site request refused (missing or wrong X-CSRF-Token).")
            try:
                response = await handler(request)
            except TooLarge:
                return _error(413, f"The request is larger than {MAX_BODY:,} bytes.")
            response.headers.update(HEADERS)
            return response

        return endpoint

    def principal(request: Request) -> auth.Principal:
        if not auth.auth_required(settings):
            return auth.FULL_ACCESS
        found = auth.principal_for(token_of(request), settings)
        assert found is not None  # guarded() refused the request otherwise
        return found

    async def index(_: Request) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        path = (STATIC / name).resolve()
        if not path.is_relative_to(STATIC.resolve()) or not path.is_file() or path.name == "index.html":
            return _error(404, "No such file.")
        return FileResponse(path)

    async def who(request: Request) -> Response:
        p = principal(request)
        return JSONResponse({"user_id": p.user_id, "owner": p.user_id is None, "csrf": csrf_for(token_of(request)),
                             "auth_required": auth.auth_required(settings), "llm": settings.llm_enabled,
                             "version": __version__})

    async def relay(request: Request) -> Response:
        try:
            body = await _json(request)
            server, tool, arguments = body["server"], body["tool"], body.get("arguments") or {}
        except (ValueError, KeyError, TypeError):
            return _error(400, "Send JSON {server, tool, arguments}.")
        if server not in SERVERS or not isinstance(tool, str) or not isinstance(arguments, dict):
            return _error(400, f"server must be one of {', '.join(SERVERS)}, tool a name, arguments an object.")
        try:
            async with session(base_url, server, token_of(request)) as s:
                return JSONResponse(await call(s, tool, arguments))
        except Exception as exc:  # the server itself did not answer (a tool error is an answer)
            return _error(502, f"The {server} server did not answer: {exc.__class__.__name__}.")

    async def export(request: Request) -> Response:
        try:
            body = await _json(request)
            fmt, user = body.get("format", "json"), body.get("user_id") or principal(request).user_id
        except (ValueError, AttributeError):
            return _error(400, "Send JSON {format, user_id}.")
        if fmt not in ("json", "markdown") or not (user is None or isinstance(user, str)):
            return _error(400, "format must be json or markdown, user_id a user id.")
        try:
            await check(base_url, token_of(request), user)
        except ExportError as exc:
            return _error(403, str(exc))
        chunks: AsyncIterator[str] = export_stream(base_url, token_of(request), user, fmt)
        name = f"memories-{user or 'default'}.{'json' if fmt == 'json' else 'md'}"
        return StreamingResponse(chunks, media_type="application/json" if fmt == "json" else "text/markdown",
                                 headers={"Content-Disposition": f'attachment; filename="{name}"'})

    async def upload(request: Request) -> Response:
        """A document from the browser, added to the corpus through research's corpus_add(path=…)."""
        try:
            body = await _json(request)
            name, data = str(body["name"]), base64.b64decode(body["data"], validate=True)
            user_id = body.get("user_id")
        except (ValueError, KeyError, TypeError, binascii.Error):
            return _error(400, "Send JSON {name, data (base64)}.")
        suffix = Path(name).suffix.lower()
        if suffix not in UPLOAD_SUFFIXES or len(data) > MAX_UPLOAD:
            return _error(400, f"Upload a {', '.join(UPLOAD_SUFFIXES)} file of at most {MAX_UPLOAD:,} bytes.")
        folder = upload_dir(settings)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = folder / f"{uuid.uuid4().hex}{suffix}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        try:
            args: dict[str, Any] = {"path": str(path), "title": Path(name).stem[:300] or None}
            if user_id:
                args["user_id"] = user_id
            async with session(base_url, "research", token_of(request)) as s:
                return JSONResponse(await call(s, "corpus_add", args))
        finally:
            path.unlink(missing_ok=True)

    async def status(request: Request) -> Response:
        """What `alphaavatar doctor` reports that a browser may see; store size for the owner only."""
        body: dict[str, Any] = {"llm": settings.llm_model if settings.llm_enabled else None,
                                "tavily": bool(os.environ.get("TAVILY_API_KEY")),
                                "store": "Qdrant server" if settings.qdrant_url else "Qdrant Edge (embedded)",
                                "tokens": {"owner": settings.token is not None, "users": len(settings.user_tokens)}}
        if principal(request).user_id is None:
            body["store_bytes"] = sum(f.stat().st_size for f in settings.home.rglob("*") if f.is_file())
            body["home"] = str(settings.home)
        return JSONResponse(body)

    async def chat(request: Request) -> Response:
        """One typed turn with the agent (needs an LLM), streamed as NDJSON: `{"delta"}` lines as the
        LLM writes, then one line with the reply and what was in its context (or `{"error"}`).
        NDJSON over a POST rather than an EventSource, so the token stays in a header and the CSRF
        checks of every other change apply."""
        if not settings.llm_enabled:
            return _error(409, str(llm_unavailable("Chat")))
        try:
            body = await _json(request)
            text, user = str(body["text"]).strip(), body.get("user_id")
        except (ValueError, KeyError, TypeError):
            return _error(400, "Send JSON {text, user_id}.")
        p = principal(request)
        user = p.user_id or (user if isinstance(user, str) and user else "default")
        if not text or len(text) > 4000:
            return _error(400, "Type between 1 and 4,000 characters.")
        async def lines() -> AsyncIterator[str]:
            try:
                async for event in chats.turn(token_of(request), p.user_id is None, user, text):
                    yield json.dumps(event) + "\n"
            except Exception as exc:  # an LLM outage is an answer, not a crash
                log.warning("chat turn failed: %s", exc.__class__.__name__)
                yield json.dumps({"error": f"The agent could not answer: {llm_failed(exc)}"}) + "\n"

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    return [
        Route("/", guarded(index, api=False)),
        Route("/api/chat", guarded(chat, changes=True), methods=["POST"]),
        Route("/assets/{name:path}", guarded(asset, api=False)),
        Route("/api/session", guarded(who)),
        Route("/api/status", guarded(status)),
        Route("/api/call", guarded(relay, changes=True), methods=["POST"]),
        Route("/api/export", guarded(export, changes=True), methods=["POST"]),
        Route("/api/corpus/upload", guarded(upload, changes=True), methods=["POST"]),
    ]
