"""Long-term memory on the core store: scopes, dedup, history, erasure, LLM extraction.

One `MemoryService` per process. Writes go through one group-committing writer (`writes`) and
are acknowledged only once they are on disk, store and history alike, so a crash after an
answer loses nothing and a crash before one leaves nothing half-written.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote

from mcp_servers.core import audit, cursors
from mcp_servers.core.auth import Principal, scope_user
from mcp_servers.core.bounds import check_stored
from mcp_servers.core.embeddings import get_embedder
from mcp_servers.core.errors import Forbidden, NotFound, UserError
from mcp_servers.core.llm import get_llm, llm_failed
from mcp_servers.core.settings import Settings
from mcp_servers.core.store import CollectionSpec, Hit, VectorStore, Where, open_store
from mcp_servers.core.store.aio import off_loop
from mcp_servers.core.visibility import Visibility, may_hear

from . import reflection, retrieval, visibility
from .exports import EXPORTS_SPEC, Exports, FileExports, StoreExports, export_name
from .extraction import Extractor
from .followups import Followups, detect
from .history import HISTORY_SPEC, Histories, History, StoreHistory
from .models import (
    MAX_BATCH,
    AddEvent,
    AddItem,
    AddResult,
    ExportResult,
    Followup,
    FollowupList,
    FollowupStatus,
    HistoryResult,
    ListResult,
    MemoryItem,
    ReflectEvent,
    ReflectResult,
    Scope,
    SearchResult,
    ToolExperience,
)
from .render import export_json, export_markdown
from .store_followups import FOLLOWUPS_SPEC, FollowupBook, StoreFollowups
from .writes import Prepared, Writer, utc

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_USER = "default"
SCOPES: tuple[Scope, ...] = ("avatar", "user", "tool", "session")
SEARCH_SCOPES: tuple[Scope, ...] = ("user", "session", "avatar")
EXPORT_BUDGET = 24_000  # characters returned inline; the saved export holds the whole of it
MAX_FOLLOWUPS = 10_000  # a person's follow-ups read at once to filter them by who is present
MAX_SEARCH_DEPTH = 200  # results a search pages through; beyond, narrow the query


def export_uri(user: str, name: str) -> str:
    return f"memory://users/{quote(user, safe='')}/exports/{name}"


def memories_spec(dim: int) -> CollectionSpec:
    return CollectionSpec(
        name="memories",
        dim=dim,
        sparse=True,
        tenant_fields=("avatar_id", "user_id"),
        keyword_fields=("scope", "session_id", "hash", "tool", "visibility", "heard_by", "entities", "source",
                        "derived_from", "cites_users"),
        float_fields=("occurred_ts", "created_ts", "seq"),
    )


AVATAR_OWNER = ""  # the user_id of avatar-scope memories: theirs is no one's


def _scope_of(d: reflection.Derived) -> Scope:
    """Where a derived record lives: the avatar's own, a tool lesson, or a person's."""
    return "avatar" if d.key.startswith(reflection.AVATAR) else "tool" if d.tool else "user"


def _experience(hit: Hit) -> ToolExperience:
    """A recorded call as a past experience; a lesson drawn from several calls carries its text instead."""
    md, p = hit.payload.get("metadata") or {}, hit.payload
    seen = {"id": hit.id, "tool": md.get("tool", "?"), "success": bool(md.get("success")),
            "occurred_at": p.get("occurred_at"), "score": round(hit.score, 6) if hit.score else None}
    if p.get("source") == reflection.DERIVED:
        return ToolExperience(**seen, lesson=p["content"])
    return ToolExperience(**seen, task=md.get("task"), arguments=md.get("arguments") or {}, outcome=md.get("outcome"),
                          latency_ms=md.get("latency_ms"))


def to_item(hit: Hit) -> MemoryItem:
    p = hit.payload
    return MemoryItem(
        id=hit.id,
        content=p["content"],
        scope=p["scope"],
        user_id=p.get("user_id"),
        session_id=p.get("session_id"),
        occurred_at=p.get("occurred_at"),
        created_at=p["created_at"],
        updated_at=p["updated_at"],
        source=p.get("source", "verbatim"),
        metadata=p.get("metadata") or {},
        visibility=visibility.of(p),
        heard_by=p.get("heard_by") or [],
        derived_from=p.get("derived_from") or [],
        score=round(hit.score, 6) if hit.score else None,
    )


def tool_call_item(tool: str, arguments: dict[str, Any], outcome: str, success: bool, latency_ms: float | None,
                   task: str, user_id: str | None, session_id: str | None) -> AddItem:
    """A tool call as a 'tool'-scope memory: a sentence to search by, the call itself in the metadata."""
    text = f"{task or 'call'} → {tool}({json.dumps(arguments, ensure_ascii=False)[:1000]}): " + (
        ("ok: " if success else "failed: ") + outcome[:1000]
    )
    return AddItem(content=text, scope="tool", user_id=user_id, session_id=session_id, infer=False, metadata={
        "tool": tool, "arguments": arguments, "outcome": outcome or None, "success": success,
        "latency_ms": latency_ms, "task": task or None})


class _Opened(Generic[T]):
    """A part `start` opens and `close` lets go (kept as `_<name>`): read outside of them, it says so."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = f"_{name}"

    def __get__(self, service: object, owner: type | None = None) -> T:
        part: T | None = getattr(service, self.slot)
        if part is None:
            raise RuntimeError("memory store is not open")
        return part


class MemoryService:
    store = _Opened[VectorStore]()
    history = _Opened[Histories]()
    exports = _Opened[Exports]()
    followups = _Opened[FollowupBook]()
    writer = _Opened[Writer]()

    def __init__(self, settings: Settings):
        self.settings = settings
        self.avatar_id = settings.avatar_id
        self.embedder = get_embedder(settings)
        self.dir = settings.data_dir("memory")
        self._store: VectorStore | None = None
        self._history: Histories | None = None
        self._writer: Writer | None = None
        self._exports: Exports | None = None
        self._followups: FollowupBook | None = None
        self.llm = get_llm(settings)
        self.extractor = Extractor(self.llm) if self.llm else None

    # lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        self.embedder.warm()
        self._store = await off_loop(open_store, self.settings, "memory", memories_spec(self.embedder.dim))
        self._history = (StoreHistory(await off_loop(open_store, self.settings, "memory", HISTORY_SPEC))
                         if self.settings.qdrant_url else History(self.dir / "history.db"))
        self._exports = (StoreExports(await off_loop(open_store, self.settings, "memory", EXPORTS_SPEC))
                         if self.settings.qdrant_url else FileExports(self.dir / "exports"))
        self._followups = (StoreFollowups(await off_loop(open_store, self.settings, "memory", FOLLOWUPS_SPEC))
                           if self.settings.qdrant_url else Followups(self.dir / "followups.db"))
        self._writer = Writer(self.avatar_id, self._store, self._history, self.embedder, self._exports, self._followups)
        await off_loop(self._writer.recover)

    async def close(self) -> None:
        if self._writer is not None:
            await self._writer.commit.idle()
            self._writer = None
        parts = (self._store, self._history, self._followups, self._exports)
        self._store = self._history = self._followups = self._exports = None
        for part in parts:
            if part is not None:
                await off_loop(part.close)

    @property
    def ready(self) -> bool:
        """The store is open and the embedder loaded: a search answers at full speed."""
        return self._store is not None and self.embedder.ready

    def health(self) -> dict[str, object]:
        """What `/health` reports: the store open or closed, the embedder's state, an LLM or none."""
        return {"store": "open" if self._store is not None else "closed", "embeddings": self.embedder.state,
                "llm": bool(self.extractor)}

    # scoping --------------------------------------------------------------------------------
    def resolve_owner(self, principal: Principal, scope: Scope, user_id: str | None) -> str | None:
        """The user a write in this scope belongs to (None for avatar-wide knowledge)."""
        if scope == "avatar":
            if principal.user_id is not None:
                raise Forbidden("A user-scoped token cannot write avatar-wide memories.")
            if user_id is not None:
                raise UserError("Avatar-scope memories belong to no user: leave user_id empty or use scope 'user'.")
            return None
        return scope_user(principal, user_id) or DEFAULT_USER

    def visible(
        self,
        principal: Principal,
        user_id: str | None,
        scopes: Sequence[Scope],
        session_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        present: Sequence[str] | None = None,
    ) -> Where:
        """The filter of what a caller may see: their user's memories and the avatar's shared ones, and
        of those only what everyone `present` may hear (`visibility.audible`)."""
        user = scope_user(principal, user_id) or DEFAULT_USER
        where = Where(equals={"avatar_id": self.avatar_id})
        user_scopes = [s for s in scopes if s != "avatar"]
        if "avatar" in scopes and not user_scopes:
            where.equals["scope"] = "avatar"
        elif "avatar" in scopes:
            # avatar-wide items carry user_id "" so one keyword condition covers both
            where.any_of["user_id"] = [user, ""]
            where.any_of["scope"] = list(scopes)
        else:
            where.equals["user_id"] = user
            where.any_of["scope"] = [str(s) for s in user_scopes]
        if session_id is not None:
            where.equals["session_id"] = session_id
        if since is not None or until is not None:
            lo = utc(since).timestamp() if since else None
            hi = utc(until).timestamp() if until else None
            if lo is not None and hi is not None and lo > hi:
                raise UserError("'since' is after 'until': nothing can match.")
            where.ranges["occurred_ts"] = (lo, hi)
        return visibility.audible(where, user, present)

    def _readable(self, principal: Principal, hit: Hit) -> bool:
        p = hit.payload
        if p.get("avatar_id") != self.avatar_id:
            return False
        return principal.user_id is None or p.get("user_id") in (principal.user_id, "")

    async def get_owned(self, principal: Principal, memory_id: str) -> Hit:
        try:
            uuid.UUID(memory_id)
        except ValueError:
            raise NotFound(f"'{memory_id}' is not a memory id (ids are UUIDs, as memory_add returns them).") from None
        hits = await off_loop(self.store.retrieve, [memory_id])
        if not hits or not self._readable(principal, hits[0]):
            if hits and hits[0].payload.get("avatar_id") == self.avatar_id:
                audit.concerns(hits[0].payload.get("user_id"))  # another user's memory: on their trail
            raise NotFound(f"No memory with id {memory_id}.")
        return hits[0]

    # writing --------------------------------------------------------------------------------
    async def add(self, items: Sequence[AddItem], principal: Principal, actor: str = "mcp") -> AddResult:
        """Validate every item first, then write them all in one batch (or none)."""
        if not items:
            raise UserError("Nothing to add: give 'content' or 'messages'.")
        if len(items) > MAX_BATCH:
            raise UserError(f"At most {MAX_BATCH} items per call; split the batch.")
        prepared = []
        for n, it in enumerate(items):
            text = self._text_of(it, n)
            owner = self.resolve_owner(principal, it.scope, it.user_id)
            if it.scope == "session" and not it.session_id:
                raise UserError(f"Item {n}: scope 'session' needs a session_id.")
            json.dumps(it.metadata)  # metadata must be plain JSON
            try:
                heard = visibility.audience(it.visibility, it.present, owner, it.scope)
            except UserError as exc:
                raise UserError(f"Item {n}: {exc}") from None
            prepared.append((it.model_copy(update={"visibility": heard["visibility"]}), text, owner))
        wants_llm = [bool(self.extractor and it.infer and it.scope != "tool") for it, _, _ in prepared]
        verbatim = [p for p, llm in zip(prepared, wants_llm, strict=True) if not llm]
        inferred = [p for p, llm in zip(prepared, wants_llm, strict=True) if llm]
        result = await self._add_verbatim(verbatim, actor) if verbatim else AddResult(results=[], mode="verbatim")
        if inferred:
            extracted = await self._add_extracted(inferred, principal, actor)
            result = AddResult(results=result.results + extracted.results, mode="extracted", note=extracted.note)
        return result

    @staticmethod
    def _text_of(it: AddItem, n: int) -> str:
        if (it.content is None) == (it.messages is None):
            raise UserError(f"Item {n}: give exactly one of 'content' or 'messages'.")
        if it.messages is not None:
            turns = [m for m in it.messages if m.role != "system" and m.content.strip()]
            if not turns:
                raise UserError(f"Item {n}: the messages hold no text to remember.")
            text = "\n".join(f"{m.name or m.role}: {m.content.strip()}" for m in turns)
        else:
            text = (it.content or "").strip()
        if not text:
            raise UserError(f"Item {n}: the content is empty.")
        return text

    async def _add_verbatim(self, prepared: Sequence[Prepared], actor: str, source: str = "verbatim") -> AddResult:
        result = await self.writer.add(prepared, actor, source)
        for (it, text, owner), ev in zip(prepared, result.results, strict=True):
            if ev.event == "ADD":
                await self._follow_up(it.scope, owner, ev.id, text, utc(it.occurred_at))
        return result

    async def _follow_up(self, scope: str, owner: str | None, memory_id: str, text: str, when: datetime) -> None:
        """Record what a person's memory says will happen, due when they said it would."""
        if owner and scope in ("user", "session") and (found := detect(text, when)):
            await off_loop(self.followups.add, owner, memory_id, found)

    async def _add_extracted(
        self, prepared: Sequence[tuple[AddItem, str, str | None]], principal: Principal, actor: str
    ) -> AddResult:
        assert self.extractor is not None
        events: list[AddEvent] = []
        notes: list[str] = []
        for it, text, owner in prepared:
            try:
                facts = await self.extractor.facts(text)
            except Exception as exc:  # the LLM is an optional outside service: keep the words
                log.warning("fact extraction failed, storing verbatim", extra={"fields": {"error": str(exc)[:200]}})
                notes.append(f"Extraction failed: {llm_failed(exc)} The text was stored verbatim.")
                events += (await self._add_verbatim([(it, text, owner)], actor)).results
                continue
            if not facts:
                notes.append("The LLM found no fact worth remembering; nothing stored.")
                continue
            where = self.visible(principal, owner, [it.scope])
            where.not_equals["source"] = reflection.DERIVED  # facts reconcile with what was said, not derived
            old: dict[str, Hit] = {}
            for fact_hits in await asyncio.gather(*(retrieval.search(self.store, self.embedder, f, where, 5) for f in facts)):
                for h in fact_hits:
                    old.setdefault(h.id, h)
            try:
                decisions = await self.extractor.reconcile(list(old.values()), facts)
            except Exception as exc:
                log.warning("reconciliation failed, adding facts", extra={"fields": {"error": str(exc)[:200]}})
                notes.append(f"Reconciliation failed: {llm_failed(exc)} The facts were added as new.")
                decisions = [("ADD", None, f) for f in facts]
            adds = [f for ev, _, f in decisions if ev == "ADD"]
            if adds:
                batch = [(it.model_copy(update={"content": f, "messages": None}), f, owner) for f in adds]
                events += (await self._add_verbatim(batch, actor, source="extracted")).results
            for ev, hit, f in decisions:
                if ev == "UPDATE" and hit is not None:  # the new words are heard by who heard them said
                    heard = visibility.audience(it.visibility, it.present, owner, it.scope)
                    events.append(await self._update(hit, f, it.metadata or None, actor, heard))
                elif ev == "DELETE" and hit is not None:
                    await self._delete(hit, actor)
                    events.append(AddEvent(id=hit.id, content=hit.payload["content"], event="DELETE"))
        return AddResult(results=events, mode="extracted", note=" ".join(notes) or None)

    async def _update(self, hit: Hit, content: str, metadata: dict[str, Any] | None, actor: str,
                      heard: dict[str, Any]) -> AddEvent:
        old, stored = await self.writer.update(hit.id, content, metadata, actor, heard)
        await self._refollow(stored)
        await self._rederive([hit.id])
        return AddEvent(id=hit.id, content=content, event="UPDATE", previous=old)

    async def _refollow(self, stored: Hit) -> None:
        """A memory's text changed: its follow-ups are found again in the new text (none in a derived one)."""
        p = stored.payload
        await off_loop(self.followups.drop_memories, [stored.id])
        if p.get("source") == reflection.DERIVED:
            return
        when = datetime.fromisoformat(p["occurred_at"]) if p.get("occurred_at") else datetime.now(UTC)
        await self._follow_up(p["scope"], p.get("user_id") or None, stored.id, p["content"], when)

    async def update(self, principal: Principal, memory_id: str, content: str | None,
                     metadata: dict[str, Any] | None) -> MemoryItem:
        hit = await self.get_owned(principal, memory_id)
        if principal.user_id is not None and hit.payload.get("scope") == "avatar":
            raise Forbidden("A user-scoped token cannot change avatar-wide memories.")
        if content is None and metadata is None:
            raise UserError("Nothing to update: give 'content' and/or 'metadata'.")
        text = content.strip() if content is not None else None
        if text == "":
            raise UserError("The new content is empty; use memory_delete to remove a memory.")
        if metadata is not None:
            try:
                check_stored({**(hit.payload.get("metadata") or {}), **metadata}, "The metadata with these keys merged in")
            except ValueError as exc:
                raise UserError(f"{exc}.") from None
        _, stored = await self.writer.update(memory_id, text, metadata, "mcp")
        if text is not None:
            await self._refollow(stored)
            await self._rederive([memory_id])
        return to_item(stored)

    async def set_visibility(self, principal: Principal, memory_id: str, to: Visibility) -> MemoryItem:
        """Change who may hear a memory of the caller's own (or, for the owner, anyone's)."""
        hit = await self.get_owned(principal, memory_id)
        if hit.payload.get("scope") == "avatar":
            raise UserError("Avatar-scope memories are for everyone; their visibility does not change.")
        _, stored = await self.writer.update(memory_id, None, None, "mcp", {"visibility": to})
        await self._rederive([memory_id])  # what was derived from it is no wider than it
        return to_item(stored)

    async def _delete(self, hit: Hit, actor: str) -> None:
        await self.writer.delete(hit.id, actor)
        await off_loop(self.followups.drop_memories, [hit.id])
        await self._rederive([hit.id])

    async def delete(self, principal: Principal, memory_id: str) -> None:
        hit = await self.get_owned(principal, memory_id)
        if principal.user_id is not None and hit.payload.get("scope") == "avatar":
            raise Forbidden("A user-scoped token cannot delete avatar-wide memories.")
        await self._delete(hit, "mcp")

    async def forget_user(self, principal: Principal, user_id: str) -> tuple[int, int, int]:
        """Erase every trace of a user: vectors and payloads (store compacted), history, exports, follow-ups."""
        user = scope_user(principal, user_id)
        if not user:
            raise UserError("Say which user to forget.")
        return await self.writer.forget(user)

    async def reassign_user(self, principal: Principal, user_id: str, into_user_id: str) -> int:
        """Move a user's memories to another user (a provisional user who turned out to be a known one)."""
        if principal.user_id is not None:
            raise Forbidden("Only the owner can move memories between users; a user-scoped token cannot.")
        if user_id == into_user_id:
            raise UserError("'user_id' and 'into_user_id' are the same user; name two different users.")
        return await self.writer.reassign(user_id, into_user_id)

    async def export(self, principal: Principal, user_id: str | None, fmt: Literal["markdown", "json"],
                     scope: Scope | None) -> ExportResult:
        """Every visible memory of a user, oldest first, saved whole (erased with the user) and returned
        inline up to a budget; any replica reads the whole export back at its `uri`."""
        user = scope_user(principal, user_id) or DEFAULT_USER
        where = self.visible(principal, user_id, [scope] if scope else SCOPES)
        items: list[MemoryItem] = []
        cursor: str | None = None
        while True:
            page, cursor, _ = await self.scroll_page(where, 500, cursor)
            items += page
            if cursor is None:
                break
        items.sort(key=lambda m: (m.occurred_at or "", m.created_at))
        text = export_markdown(items) if fmt == "markdown" else export_json(items)
        name = export_name(fmt)
        path = await off_loop(self.exports.save, user, name, text)
        return ExportResult(format=fmt, path=path, uri=export_uri(user, name), count=len(items),
                            content=text[:EXPORT_BUDGET], truncated=len(text) > EXPORT_BUDGET)

    async def read_export(self, principal: Principal, user_id: str, name: str) -> str:
        """A whole export of the user's, made through any replica."""
        text = await off_loop(self.exports.read, scope_user(principal, user_id) or DEFAULT_USER, name)
        if text is None:
            raise NotFound(f"No export named '{name}' for user '{user_id}': memory_export returns the uri of each.")
        return text

    async def history_of(self, principal: Principal, memory_id: str) -> HistoryResult:
        """How a memory changed; a scoped token sees only its own user's memories' history."""
        events = await off_loop(self.history.events, memory_id)
        if not events:
            raise UserError(f"No history for memory {memory_id}.")
        if principal.user_id is not None:
            await self.get_owned(principal, memory_id)
        return HistoryResult(id=memory_id, events=events)

    # reflection -----------------------------------------------------------------------------
    def _said(self, user: str) -> Where:
        """A person's own memories (scopes user and session), none derived."""
        return Where(equals={"avatar_id": self.avatar_id, "user_id": user}, any_of={"scope": ["user", "session"]},
                     not_equals={"source": reflection.DERIVED})

    def _called(self, user: str, tool: str | None = None) -> Where:
        """A person's recorded tool calls (of one tool), none derived: what lessons are counted from."""
        where = Where(equals={"avatar_id": self.avatar_id, "user_id": user, "scope": "tool"},
                      not_equals={"source": reflection.DERIVED})
        if tool is not None:
            where.equals["tool"] = tool
        return where

    def _shared(self) -> Where:
        """What anyone shared with everyone (and the avatar's own memories), none derived: the only
        memories the avatar's knowledge across people is drawn from."""
        return Where(equals={"avatar_id": self.avatar_id, "visibility": "everyone"},
                     any_of={"scope": ["user", "session", "avatar"]}, not_equals={"source": reflection.DERIVED})

    def _derived(self, user: str | None = None, sources: Sequence[str] = ()) -> Where:
        """Derived memories: a person's, or those resting on any of `sources`."""
        where = Where(equals={"avatar_id": self.avatar_id, "source": reflection.DERIVED})
        if user is not None:
            where.equals["user_id"] = user
        if sources:
            where.any_of["derived_from"] = list(sources)
        return where

    async def reflect(self, principal: Principal, user_id: str | None, avatar: bool = False) -> ReflectResult:
        """Derive a person's insights (with the LLM) or entity cards (without) and tool lessons from their
        memories, or the avatar's cards across people, and write what changed since the last reflection."""
        if avatar:
            return await self._reflect_across(principal, user_id)
        user = scope_user(principal, user_id) or DEFAULT_USER
        said = await off_loop(self.store.every, self._said(user))
        wanted: list[reflection.Derived] | None = None
        note = None
        if self.llm is not None and said:
            try:
                wanted = await reflection.insights(self.llm, said)
            except Exception as exc:  # the LLM is an optional outside service: cards stand in
                log.warning("reflection with the LLM failed", extra={"fields": {"error": str(exc)[:200]}})
                note = f"Reflection with the LLM failed: {llm_failed(exc)} Entity cards stand in."
        mode: Literal["entity_cards", "llm"] = "entity_cards" if wanted is None else "llm"
        if wanted is None:
            wanted = reflection.cards(said)
        called = await off_loop(self.store.every, self._called(user))
        wanted += reflection.lessons(called)
        stored = await off_loop(self.store.every, self._derived(user))
        sources = {h.id: h.payload for h in [*said, *called]}
        events = await self._apply(user, reflection.plan(stored, wanted, sources), sources)
        return ReflectResult(user_id=user, mode=mode, results=events, note=note)

    async def _reflect_across(self, principal: Principal, user_id: str | None) -> ReflectResult:
        if principal.user_id is not None:
            raise Forbidden("Only the owner can reflect across people; a user-scoped token reflects on its own user.")
        if user_id is not None:
            raise UserError("The avatar's reflection draws on everyone: leave user_id empty, or drop 'avatar'.")
        shared = await off_loop(self.store.every, self._shared())
        wanted = reflection.cards(shared, across=True)
        stored = await off_loop(self.store.every, self._derived(AVATAR_OWNER))
        sources = {h.id: h.payload for h in shared}
        events = await self._apply(AVATAR_OWNER, reflection.plan(stored, wanted, sources), sources)
        return ReflectResult(user_id=None, mode="entity_cards", results=events)

    async def _apply(self, user: str, todo: reflection.Plan,
                     sources: dict[str, dict[str, Any]]) -> list[ReflectEvent]:
        """Write a reflection's plan: each record added, updated or removed on its own (durably)."""
        events: list[ReflectEvent] = []

        def event(mid: str, what: Any, d: reflection.Derived | None, p: dict[str, Any]) -> ReflectEvent:
            kind = d.kind if d else str(((p.get("metadata") or {}).get("derived") or {}).get("kind", ""))
            return ReflectEvent(id=mid, event=what, kind=kind, about=(d.text if d else p["content"]).split("\n")[0][:200],
                                derived_from=list(d.sources) if d else p.get("derived_from") or [],
                                visibility=visibility.of(p))

        if todo.add:
            extra = [reflection.fields(d, sources) for d in todo.add]
            prepared = [(AddItem(content=d.text, scope=_scope_of(d), user_id=user or None, occurred_at=d.occurred_at,
                                 infer=False, metadata=reflection.metadata(d)), d.text, user or None)
                        for d in todo.add]
            added = await self.writer.add(prepared, "reflect", reflection.DERIVED, extra)
            for d, ev, f in zip(todo.add, added.results, extra, strict=True):
                events.append(event(ev.id, "ADD" if ev.event == "ADD" else "UNCHANGED", d, f))
        for old, d in todo.update:
            try:
                _, stored = await self.writer.update(old.id, d.text, reflection.metadata(d), "reflect",
                                                     reflection.fields(d, sources))
            except NotFound:  # removed meanwhile: the next reflection adds it again
                continue
            events.append(event(old.id, "UPDATE", d, stored.payload))
        for old in todo.remove:
            try:
                await self.writer.delete(old.id, "reflect")
            except NotFound:
                continue
            events.append(event(old.id, "DELETE", None, old.payload))
        events += [event(h.id, "UNCHANGED", None, h.payload) for h in todo.unchanged]
        return events

    async def _rederive(self, memory_ids: Sequence[str]) -> None:
        """Memories changed or went: what was derived from them is derived again (a card, a lesson) or
        removed (an LLM's insight, until the next reflection), so no derived memory outlives its sources."""
        for d in await off_loop(self.store.every, self._derived(sources=memory_ids)):
            user = d.payload.get("user_id") or AVATAR_OWNER
            key = reflection.key_of(d)
            wanted: list[reflection.Derived] = []
            hits: list[Hit] = []
            across = key.startswith(reflection.AVATAR)
            if key.removeprefix(reflection.AVATAR).startswith("entity:"):
                name = key.removeprefix(reflection.AVATAR).removeprefix("entity:")
                where = self._shared() if across else self._said(user)
                where.any_of["entities"] = [name]
                hits, _ = await off_loop(self.store.scroll, where, reflection.MAX_SOURCES + 1)
                wanted = [c] if (c := reflection.card(name, hits, across)) else []
            elif key.startswith("tool:"):
                tool = key.removeprefix("tool:")
                hits = await off_loop(self.store.every, self._called(user, tool))
                wanted = [t] if (t := reflection.lesson(tool, hits)) else []
            sources = {h.id: h.payload for h in hits}
            await self._apply(user, reflection.plan([d], wanted, sources), sources)

    # follow-ups -----------------------------------------------------------------------------
    async def followup_page(self, principal: Principal, user_id: str | None, due_before: datetime | None,
                            include_done: bool, limit: int, cursor: str | None,
                            present: Sequence[str] | None = None) -> FollowupList:
        """A page of a person's follow-ups, soonest due first, each with its source memory's visibility; with
        `present`, only those everyone present may hear (`core.visibility.may_hear`, the rule of memory_search)."""
        user = scope_user(principal, user_id) or DEFAULT_USER
        asked = [user, due_before.isoformat() if due_before else None, include_done, present]
        offset = cursors.decode_offset("followup_list", asked, cursor)
        if present is None:
            items, total = await off_loop(self.followups.page, user, due_before, include_done, limit, offset)
            items = await self._with_visibility(items)
        else:
            every, _ = await off_loop(self.followups.page, user, due_before, include_done, MAX_FOLLOWUPS, 0)
            audible = [f for f in await self._with_visibility(every) if may_hear(f.visibility, f.heard_by, user, present)]
            items, total = audible[offset: offset + limit], len(audible)
        more = offset + len(items) < total
        return FollowupList(results=items, total=total,
                            next_cursor=cursors.encode("followup_list", asked, offset + limit) if more else None)

    async def _with_visibility(self, items: list[Followup]) -> list[Followup]:
        payloads = {h.id: h.payload for h in await off_loop(self.store.retrieve, sorted({f.memory_id for f in items}))}
        return [f.model_copy(update={"visibility": visibility.of(payloads.get(f.memory_id, {})),
                                     "heard_by": (payloads.get(f.memory_id) or {}).get("heard_by") or []})
                for f in items]

    async def update_followup(self, principal: Principal, followup_id: str, status: FollowupStatus | None,
                              due_at: datetime | None) -> Followup:
        found = await off_loop(self.followups.get, followup_id)
        if found is None or (principal.user_id is not None and found.user_id != principal.user_id):
            raise NotFound(f"No follow-up with id {followup_id}.")
        if status is None and due_at is None:
            raise UserError("Nothing to change: give 'status' and/or 'due_at'.")
        updated = await off_loop(self.followups.update, followup_id, status, due_at)
        if updated is None:
            raise NotFound(f"No follow-up with id {followup_id}.")
        return updated

    # reading --------------------------------------------------------------------------------
    async def search_page(self, where: Where, query: str, limit: int, cursor: str | None) -> SearchResult:
        """A page of what matches `query` best, within `where`."""
        if not query.strip():
            raise UserError("The query is empty.")
        asked = [query, where.model_dump(), limit]
        offset = cursors.decode_offset("memory_search", asked, cursor)
        if offset >= MAX_SEARCH_DEPTH:
            raise UserError(f"Search pages stop at {MAX_SEARCH_DEPTH} results; narrow the query or the time range.")
        items = await self.search(where, query, limit + 1, offset)
        more = len(items) > limit
        return SearchResult(results=items[:limit],
                            next_cursor=cursors.encode("memory_search", asked, offset + limit) if more else None)

    async def list_page(self, where: Where, limit: int, cursor: str | None) -> ListResult:
        """A page of what `where` holds, the most recently occurred first."""
        asked = where.model_dump()
        items, nxt, total = await self.newest_page(where, limit, cursors.decode_mark("memory_list", asked, cursor))
        return ListResult(results=items, next_cursor=cursors.encode("memory_list", asked, nxt and cursors.mark(*nxt)),
                          total=total)

    async def search(self, where: Where, query: str, limit: int, offset: int) -> list[MemoryItem]:
        relevant: set[str] = set()
        hits = await retrieval.search(self.store, self.embedder, query, where, limit, offset, relevant=relevant)
        return [to_item(h).model_copy(update={"relevant": h.id in relevant}) for h in hits]

    async def scroll_page(self, where: Where, limit: int, cursor: str | None) -> tuple[list[MemoryItem], str | None, int]:
        """A page in store order (id), with the store's own cursor: for reading everything, as export does."""
        return await off_loop(self._scroll_page, where, limit, cursor)

    def _scroll_page(self, where: Where, limit: int, cursor: str | None) -> tuple[list[MemoryItem], str | None, int]:
        hits, nxt = self.store.scroll(where, limit, cursor)
        return [to_item(h) for h in hits], nxt, self.store.count(where)

    async def newest_page(self, where: Where, limit: int,
                          after: tuple[float, str] | None) -> tuple[list[MemoryItem], tuple[float, str] | None, int]:
        return await off_loop(self._newest_page, where, limit, after)

    def _newest_page(self, where: Where, limit: int,
                     after: tuple[float, str] | None) -> tuple[list[MemoryItem], tuple[float, str] | None, int]:
        """Most recently occurred first. Memories of the same moment come in id order (the store's
        order among equal values is not stable), so a page that ends among them says where to go on."""
        hits: list[Hit] = []
        below = None
        if after is not None:
            hits = self._same_time(where, after[0], limit + 1, after[1])
            below = math.nextafter(after[0], -math.inf)
        if len(hits) <= limit:
            low, high = where.ranges.get("occurred_ts", (None, None))
            top = high if below is None else below if high is None else min(high, below)
            narrowed = where.model_copy(update={"ranges": {**where.ranges, "occurred_ts": (low, top)}})
            more = self.store.highest(narrowed, "occurred_ts", limit + 1 - len(hits))
            if more:  # every time above the last one is there whole: put each in id order
                last = more[-1].payload["occurred_ts"]
                head = sorted((h for h in more if h.payload["occurred_ts"] != last),
                              key=lambda h: (-h.payload["occurred_ts"], h.id))
                hits += head + self._same_time(where, last, len(more) - len(head), None)
        page = hits[:limit]
        nxt = (float(page[-1].payload["occurred_ts"]), page[-1].id) if len(hits) > limit else None
        return [to_item(h) for h in page], nxt, self.store.count(where)

    def _same_time(self, where: Where, at: float, n: int, after_id: str | None) -> list[Hit]:
        """Up to `n` memories that occurred exactly at `at`, in id order, after `after_id`."""
        same = where.model_copy(update={"ranges": {**where.ranges, "occurred_ts": (at, at)}})
        hits, _ = self.store.scroll(same, n + 1, after_id)
        return [h for h in hits if h.id != after_id][:n]

    async def tool_experiences(self, where: Where, task: str, limit: int) -> list[ToolExperience]:
        hits = await retrieval.search(self.store, self.embedder, task, where, limit)
        return [_experience(h) for h in hits]
