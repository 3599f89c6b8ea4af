"""Long-term memory on the core store: who may see and change what, writes, erasure, LLM extraction; reading,
reflection and follow-ups are parts it opens with the stores (`reading`, `reflecting`, `planning`).

One `MemoryService` per process. Writes go through one group-committing writer (`writes`) and
are acknowledged only once they are on disk, store and history alike, so a crash after an
answer loses nothing and a crash before one leaves nothing half-written.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from mcp_servers.core import audit
from mcp_servers.core.auth import Principal, scope_user
from mcp_servers.core.bounds import check_stored
from mcp_servers.core.embeddings import get_embedder
from mcp_servers.core.errors import Forbidden, NotFound, UserError
from mcp_servers.core.llm import get_llm, llm_failed
from mcp_servers.core.settings import Settings
from mcp_servers.core.store import Hit, VectorStore, Where, open_store
from mcp_servers.core.store.aio import off_loop
from mcp_servers.core.visibility import Visibility

from . import reflection, retrieval, visibility
from .exports import EXPORT_BUDGET, EXPORTS_SPEC, Exports, FileExports, StoreExports, export_name, export_uri
from .extraction import Extractor
from .followups import Followups
from .history import HISTORY_SPEC, Histories, History, StoreHistory
from .models import (
    MAX_BATCH,
    AddEvent,
    AddItem,
    AddResult,
    ExportResult,
    HistoryResult,
    MemoryItem,
    ReflectResult,
    Scope,
)
from .planning import Planning
from .reading import Reading, to_item
from .records import memories_spec, utc
from .reflecting import Reflector
from .render import export_json, export_markdown
from .store_followups import FOLLOWUPS_SPEC, FollowupBook, StoreFollowups
from .writes import Prepared, Writer

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_USER = "default"
SCOPES: tuple[Scope, ...] = ("avatar", "user", "tool", "session")
SEARCH_SCOPES: tuple[Scope, ...] = ("user", "session", "avatar")
MAX_SEARCH_DEPTH = 200  # results a search pages through; beyond, narrow the query


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
    reading = _Opened[Reading]()
    reflector = _Opened[Reflector]()
    planning = _Opened[Planning]()

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
        self._reading: Reading | None = None
        self._reflector: Reflector | None = None
        self._planning: Planning | None = None
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
        self._reading = Reading(self._store, self.embedder)
        self._reflector = Reflector(self.avatar_id, self._store, self._writer, self.llm)
        self._planning = Planning(self._store, self._followups)
        await off_loop(self._writer.recover)

    async def close(self) -> None:
        if self._writer is not None:
            await self._writer.commit.idle()
            self._writer = None
        self._reading = self._reflector = self._planning = None
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
    @staticmethod
    def user_of(principal: Principal, user_id: str | None) -> str:
        """The person a call is about: a user-scoped token's own, or the one the owner names (or the default)."""
        return scope_user(principal, user_id) or DEFAULT_USER

    def resolve_owner(self, principal: Principal, scope: Scope, user_id: str | None) -> str | None:
        """The user a write in this scope belongs to (None for avatar-wide knowledge)."""
        if scope == "avatar":
            if principal.user_id is not None:
                raise Forbidden("A user-scoped token cannot write avatar-wide memories.")
            if user_id is not None:
                raise UserError("Avatar-scope memories belong to no user: leave user_id empty or use scope 'user'.")
            return None
        return self.user_of(principal, user_id)

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
        user = self.user_of(principal, user_id)
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
                await self.planning.note(it.scope, owner, ev.id, text, utc(it.occurred_at))
        return result

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
        await self.planning.renote(stored)
        await self.reflector.rederive([hit.id])
        return AddEvent(id=hit.id, content=content, event="UPDATE", previous=old)

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
            await self.planning.renote(stored)
            await self.reflector.rederive([memory_id])
        return to_item(stored)

    async def set_visibility(self, principal: Principal, memory_id: str, to: Visibility) -> MemoryItem:
        """Change who may hear a memory of the caller's own (or, for the owner, anyone's)."""
        hit = await self.get_owned(principal, memory_id)
        if hit.payload.get("scope") == "avatar":
            raise UserError("Avatar-scope memories are for everyone; their visibility does not change.")
        _, stored = await self.writer.update(memory_id, None, None, "mcp", {"visibility": to})
        await self.reflector.rederive([memory_id])  # what was derived from it is no wider than it
        return to_item(stored)

    async def _delete(self, hit: Hit, actor: str) -> None:
        await self.writer.delete(hit.id, actor)
        await off_loop(self.followups.drop_memories, [hit.id])
        await self.reflector.rederive([hit.id])

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
        user = self.user_of(principal, user_id)
        where = self.visible(principal, user_id, [scope] if scope else SCOPES)
        items = await self.reading.everything(where)
        text = export_markdown(items) if fmt == "markdown" else export_json(items)
        name = export_name(fmt)
        path = await off_loop(self.exports.save, user, name, text)
        return ExportResult(format=fmt, path=path, uri=export_uri(user, name), count=len(items),
                            content=text[:EXPORT_BUDGET], truncated=len(text) > EXPORT_BUDGET)

    async def read_export(self, principal: Principal, user_id: str, name: str) -> str:
        """A whole export of the user's, made through any replica."""
        text = await off_loop(self.exports.read, self.user_of(principal, user_id), name)
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
    async def reflect(self, principal: Principal, user_id: str | None, avatar: bool = False) -> ReflectResult:
        """A person's reflection (their own, or the owner's for anyone), or the avatar's across people (the owner's)."""
        if not avatar:
            return await self.reflector.person(self.user_of(principal, user_id))
        if principal.user_id is not None:
            raise Forbidden("Only the owner can reflect across people; a user-scoped token reflects on its own user.")
        if user_id is not None:
            raise UserError("The avatar's reflection draws on everyone: leave user_id empty, or drop 'avatar'.")
        return await self.reflector.avatar()
