"""Who read or wrote what, per user: an MCP server middleware records every tool call, resource
read and prompt, and one `<server>_audit_list` tool shows a user their own entries.

An entry names the MCP client (its `initialize` clientInfo, which a client says of itself), the
relay that vouched for it (`via`: only an in-process relay holding this process's secret can), the
caller's principal (never the token), the tool, the users it touched and the ids it returned.
Entries are filed under each user they concern, refused attempts included (`filed_under`), so a
user reads who read, changed or tried to reach their data, and a user-scoped token reads only its
own user's entries; the server's forget tool erases them (SQLite `secure_delete`, so the bytes are
overwritten). One writer thread (`Writer`) writes entries in arrival order once a call has
answered, so no answer waits for its entry; a read of the trail, and an erasure, wait for every
entry queued before them. A trail other replicas read (`shared`) is written before the answer.
"""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import hmac
import json
import logging
import queue
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel, Field

from . import auth, cursors, params
from .annotations import READ_ONLY
from .errors import Forbidden
from .settings import Settings

log = logging.getLogger(__name__)
_USER_KEYS = ("user_id", "into_user_id", "created_user_id", "merged_user_id", "claimed_user_id")
_ID_KEYS = ("id", "doc_id", "job_id", "memory_id")
_URI_USER = re.compile(r"/users/([^/?#]+)")
MAX_IDS = 50
MAX_ENTRIES = 200_000  # the oldest entries beyond this are dropped (checked every PRUNE_EVERY writes)
PRUNE_EVERY = 1_000
_KINDS = {"tools/call": "tool", "resources/read": "resource", "prompts/get": "prompt"}
OWNER = ""  # entries that concern no particular user; only the owner reads them
VIA_HEADER = "x-alphaavatar-via"
_RELAY_SECRET = secrets.token_bytes(32)  # never leaves this process
_concerned: ContextVar[set[str] | None] = ContextVar("alphaavatar_audit_concerned", default=None)


class AuditEntry(BaseModel):
    seq: int
    at: str = Field(description="UTC, ISO-8601.")
    client: str = Field(description="The MCP client's name from initialize (clientInfo, as the client says), or 'unknown'.")
    via: str | None = Field(default=None, description="The relay of this process that made the call for a person "
                            "('console': the browser console), vouched for with a secret no client can present.")
    principal: str = Field(description="Who called: 'owner', 'user:<id>', or 'owner as user:<id>' for a call the owner "
                           "made for that user (the token's scope, never the token).")
    kind: str = Field(description="tool, resource or prompt.")
    name: str = Field(description="The tool or prompt name, or the resource URI.")
    ok: bool
    user_ids: list[str] = Field(description="The users this access concerned.")
    ids: list[str] = Field(description="Ids it returned or named (memories, documents...), at most 50.")


class AuditList(BaseModel):
    entries: list[AuditEntry]
    next_cursor: str | None = Field(default=None, description="Pass back for older entries.")


class AuditLog:
    """An append-only SQLite table under the server's data folder; one row per (access, user)."""

    shared = False  # read by other processes (replicas): then a call's answer waits for its entry

    def __init__(self, path: Path):
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            db.executescript("""PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA secure_delete=ON;
                CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT, user_id TEXT,
                  client TEXT, principal TEXT, kind TEXT, name TEXT, ok INTEGER, user_ids TEXT, ids TEXT);
                CREATE INDEX IF NOT EXISTS audit_user ON audit(user_id, seq);""")
            if "via" not in {row[1] for row in db.execute("PRAGMA table_info(audit)")}:
                db.execute("ALTER TABLE audit ADD COLUMN via TEXT")
            self._db = db
        return self._db

    def record(self, users: Iterable[str], client: str, via: str | None, principal: str, kind: str, name: str,
               ok: bool, touched: list[str], ids: dict[str, list[str]]) -> None:
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        rows = [(at, _text(u), _text(client), via, _text(principal), kind, _text(name), int(ok),
                 json.dumps([_text(t) for t in touched]), json.dumps([_text(i) for i in ids.get(u, [])[:MAX_IDS]]))
                for u in users]
        with self._lock:
            db = self._conn()
            db.executemany("INSERT INTO audit (at, user_id, client, via, principal, kind, name, ok, user_ids, ids)"
                           " VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
            last = db.execute("SELECT max(seq) FROM audit").fetchone()[0] or 0
            if last // PRUNE_EVERY != (last - len(rows)) // PRUNE_EVERY:
                db.execute("DELETE FROM audit WHERE seq <= ?", (last - MAX_ENTRIES,))

    def list(self, user_id: str | None, limit: int, before: int | None) -> list[AuditEntry]:
        """Newest first; `user_id` None means every entry (the owner)."""
        sql = "SELECT seq, at, client, via, principal, kind, name, ok, user_ids, ids FROM audit WHERE 1=1"
        args: list[str | int] = []
        if user_id is not None:
            sql += " AND user_id = ?"
            args.append(_text(user_id))
        if before is not None:
            sql += " AND seq < ?"
            args.append(before)
        with self._lock:
            rows = self._conn().execute(sql + " ORDER BY seq DESC LIMIT ?", [*args, limit]).fetchall()
        return [AuditEntry(seq=r[0], at=r[1], client=r[2], via=r[3], principal=r[4], kind=r[5], name=r[6], ok=bool(r[7]),
                           user_ids=json.loads(r[8]), ids=json.loads(r[9])) for r in rows]

    def forget(self, user_id: str) -> int:
        with self._lock:
            db = self._conn()
            n = db.execute("DELETE FROM audit WHERE user_id = ?", (user_id,)).rowcount
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return int(n)


def _text(value: str) -> str:
    """Storable text: a lone surrogate (valid JSON, not UTF-8) is kept as its escape."""
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def _walk(value: Any, users: set[str], ids: dict[str, list[str]], owner: str | None = None) -> None:
    """Collect user ids, and ids keyed by the user of the object that holds them (OWNER: none says)."""
    if isinstance(value, dict):
        own = next((v for k in _USER_KEYS if isinstance(v := value.get(k), str) and v), owner)
        users.update(v for k in _USER_KEYS if isinstance(v := value.get(k), str) and v)
        for k in _ID_KEYS:
            if isinstance(v := value.get(k), str):
                ids.setdefault(own or OWNER, []).append(v)
        for v in value.values():
            _walk(v, users, ids, own)
    elif isinstance(value, list):
        for v in value:
            _walk(v, users, ids, owner)


def concerns(user_id: str | None) -> None:
    """Said by a service when a call reaches for a user's data by an id that names no user (a memory
    or a document of theirs) and is refused: the trail files the attempt under that user too."""
    found = _concerned.get()
    if found is not None and user_id:
        found.add(user_id)


def relay_headers(relay: str) -> dict[str, str]:
    """The header an in-process relay (the console) sends with its MCP requests so the trail can
    tell its calls apart: keyed with this process's secret, so no other program can claim it."""
    return {VIA_HEADER: f"{relay}.{_relay_mac(relay)}"}


def _relay_mac(relay: str) -> str:
    return hmac.new(_RELAY_SECRET, relay.encode(), hashlib.sha256).hexdigest()


def _via(ctx: Any) -> str | None:
    """The relay that vouched for this request, if its header carries this process's key."""
    request = getattr(getattr(ctx, "request_context", ctx), "request", None)
    value = str(getattr(request, "headers", {}).get(VIA_HEADER, ""))
    relay, _, mac = value.partition(".")
    return relay if relay and hmac.compare_digest(mac.encode(), _relay_mac(relay).encode()) else None


def filed_under(principal: auth.Principal, touched: set[str],
                ids: dict[str, list[str]]) -> tuple[list[str], dict[str, list[str]]]:
    """Whose trails an access goes to, and the ids each may see. Every user it concerned: for a
    user-scoped token its own user (with what was returned) and each other user it reached for —
    refused, so with no ids — so people see who tried to reach their data."""
    if principal.user_id is not None:
        own = principal.user_id
        others = sorted(touched - {own})[:MAX_IDS]
        return [own, *others], {own: [i for v in ids.values() for i in v]}
    users = sorted(touched) or [OWNER]
    if len(users) == 1:  # ids that name no user are that one user's
        ids = {users[0]: [i for v in ids.values() for i in v]}
    return users, ids


class Writer:
    """The trail's one writer thread: what is queued runs in order, off every event loop."""

    def __init__(self, log: AuditLog):
        self.log = log
        self._queue: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...], Future[Any] | None]] = \
            queue.SimpleQueue()
        threading.Thread(target=self._run, name="audit-writer", daemon=True).start()
        atexit.register(self.drain)

    def record(self, *args: Any) -> None:
        """Queue an entry; it is written after every entry queued before it."""
        self._queue.put((self.log.record, args, None))

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run `fn` (a read, an erasure) after every entry queued so far, and await its result."""
        done: Future[Any] = Future()
        self._queue.put((fn, args, done))
        return await asyncio.wrap_future(done)

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until what is queued is written (at exit)."""
        done: Future[Any] = Future()
        self._queue.put((lambda: None, (), done))
        done.result(timeout)

    def _run(self) -> None:
        while True:
            fn, args, done = self._queue.get()
            try:
                out = fn(*args)
            except Exception as exc:
                if done is None:
                    log.exception("audit entry not written")
                else:
                    done.set_exception(exc)
                continue
            if done is not None:
                done.set_result(out)


class AuditMiddleware:
    """MCP server middleware: records tool calls, resource reads and prompts (not the audit read
    itself), and erases a user's entries once a call of `forget_tool` for them succeeds."""

    def __init__(self, writer: Writer, list_tool: str, forget_tool: str | None):
        self.writer, self.list_tool, self.forget_tool = writer, list_tool, forget_tool

    async def __call__(self, ctx: Any, call_next: Any) -> Any:
        kind = _KINDS.get(ctx.method)
        params = dict(ctx.params or {})
        name = str(params.get("uri") if kind == "resource" else params.get("name", ""))
        if kind is None or name == self.list_tool:
            return await call_next(ctx)
        ok, result = False, None
        concerned: set[str] = set()
        mark = _concerned.set(concerned)
        try:
            result = await call_next(ctx)
            ok = not (isinstance(result, dict) and result.get("isError"))
            return result
        finally:
            _concerned.reset(mark)
            try:
                await self._record(ctx, kind, name, params, ok, result, concerned)
            except Exception:  # the audit must never change an answer; say it failed, loudly
                log.exception("audit entry not written for %s", kind)

    async def _record(self, ctx: Any, kind: str, name: str, params: dict[str, Any], ok: bool, result: Any,
                      concerned: set[str]) -> None:
        try:
            principal = auth.caller(ctx)
        except Forbidden:  # refused before it ran (AccessMiddleware): nothing was accessed
            return
        given = params.get("arguments")
        arguments: dict[str, Any] = given if isinstance(given, dict) else {}
        touched: set[str] = set()
        ids: dict[str, list[str]] = {}
        _walk(arguments, touched, {})
        touched.update(_URI_USER.findall(name))
        if ok and isinstance(result, dict):
            _walk(result.get("structuredContent"), touched, ids)
        if ok and name == self.forget_tool and isinstance(uid := arguments.get("user_id"), str):
            await self.writer.call(self.writer.log.forget, uid)
            return
        users, ids = filed_under(principal, touched | concerned, ids)
        if principal.user_id is None:  # the users column of a user token's entry says only what it named or got:
            touched |= concerned  # never whose the id it was refused was (NotFound hides that on purpose)
        info = getattr(ctx.session, "client_params", None)
        client = getattr(getattr(info, "client_info", None), "name", None) or "unknown"
        entry = (users, client[:200], _via(ctx), principal.label(), kind, name[:300], ok, sorted(touched)[:MAX_IDS], ids)
        if self.writer.log.shared:  # another replica may be asked next: the trail holds it before the answer
            await self.writer.call(self.writer.log.record, *entry)
        else:
            self.writer.record(*entry)


def open_audit(settings: Settings, server: str) -> AuditLog:
    """The trail beside the server's data, or with `QDRANT_URL` set in the Qdrant deployment (every
    replica writes and reads one trail, and a forget on any replica erases it)."""
    if settings.qdrant_url:
        from .store import open_store
        from .store_audit import AUDIT_SPEC, StoreAuditLog

        return StoreAuditLog(lambda: open_store(settings, server, AUDIT_SPEC))
    return AuditLog(settings.home / server / "audit.sqlite")


def install(mcp: MCPServer, settings: Settings, server: str, forget_tool: str | None) -> AuditLog:
    """Record every access to `mcp` and add its `<server>_audit_list` tool. SQLite commits each
    entry as it is written, so nothing needs closing."""
    log = open_audit(settings, server)
    writer = Writer(log)
    list_tool = f"{server}_audit_list"
    mcp.middleware.append(AuditMiddleware(writer, list_tool, forget_tool))

    @mcp.tool(name=list_tool, annotations=READ_ONLY)
    async def audit_list(
        ctx: Context,
        user_id: Annotated[str | None, Field(max_length=200, description="Whose entries (owner: default all).")] = None,
        limit: Annotated[int, Field(ge=1, le=200)] = 50,
        cursor: params.Cursor = None,
    ) -> AuditList:
        """Who read, changed or tried to reach this user's data on this server, newest first (refused
        attempts too): the MCP client, the relay, who called, the tool, the users and the ids involved.
        A user token sees only its own."""
        user = auth.scope_user(auth.caller(ctx), user_id)
        before = cursors.decode_seq(list_tool, user, cursor)
        entries = await writer.call(log.list, user, limit, before)
        more = len(entries) == limit and entries[-1].seq > 1
        return AuditList(entries=entries, next_cursor=cursors.encode(list_tool, user, entries[-1].seq if more else None))

    return log
