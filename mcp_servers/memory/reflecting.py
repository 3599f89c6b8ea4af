"""Reflection's writes: what `reflection` derives from a person's memories (or from what people shared
with everyone), written as derived memories that rest on their sources, and derived again or removed
whenever a source changes, so that no derived memory outlives what it was drawn from."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

from mcp_servers.core.errors import NotFound
from mcp_servers.core.llm import LLM, llm_failed
from mcp_servers.core.store import Hit, VectorStore, Where
from mcp_servers.core.store.aio import off_loop

from . import reflection, visibility
from .models import AddItem, ReflectEvent, ReflectResult, Scope
from .writes import Writer

log = logging.getLogger(__name__)

AVATAR_OWNER = ""  # the user_id of avatar-scope memories: theirs is no one's


def _scope_of(d: reflection.Derived) -> Scope:
    """Where a derived record lives: the avatar's own, a tool lesson, or a person's."""
    return "avatar" if d.key.startswith(reflection.AVATAR) else "tool" if d.tool else "user"



class Reflector:
    """Reflects for one avatar: reads its memories from the store and writes through its writer."""

    def __init__(self, avatar_id: str, store: VectorStore, writer: Writer, llm: LLM | None):
        self.avatar_id = avatar_id
        self.store = store
        self.writer = writer
        self.llm = llm

    def said(self, user: str) -> Where:
        """A person's own memories (scopes user and session), none derived."""
        return Where(equals={"avatar_id": self.avatar_id, "user_id": user}, any_of={"scope": ["user", "session"]},
                     not_equals={"source": reflection.DERIVED})

    def called(self, user: str, tool: str | None = None) -> Where:
        """A person's recorded tool calls (of one tool), none derived: what lessons are counted from."""
        where = Where(equals={"avatar_id": self.avatar_id, "user_id": user, "scope": "tool"},
                      not_equals={"source": reflection.DERIVED})
        if tool is not None:
            where.equals["tool"] = tool
        return where

    def shared(self) -> Where:
        """What anyone shared with everyone (and the avatar's own memories), none derived: the only
        memories the avatar's knowledge across people is drawn from."""
        return Where(equals={"avatar_id": self.avatar_id, "visibility": "everyone"},
                     any_of={"scope": ["user", "session", "avatar"]}, not_equals={"source": reflection.DERIVED})

    def derived(self, user: str | None = None, sources: Sequence[str] = ()) -> Where:
        """Derived memories: a person's, or those resting on any of `sources`."""
        where = Where(equals={"avatar_id": self.avatar_id, "source": reflection.DERIVED})
        if user is not None:
            where.equals["user_id"] = user
        if sources:
            where.any_of["derived_from"] = list(sources)
        return where

    async def person(self, user: str) -> ReflectResult:
        """Derive a person's insights (with the LLM) or entity cards (without) and tool lessons from their
        memories, and write what changed since the last reflection."""
        said = await off_loop(self.store.every, self.said(user))
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
        called = await off_loop(self.store.every, self.called(user))
        wanted += reflection.lessons(called)
        stored = await off_loop(self.store.every, self.derived(user))
        sources = {h.id: h.payload for h in [*said, *called]}
        events = await self.apply(user, reflection.plan(stored, wanted, sources), sources)
        return ReflectResult(user_id=user, mode=mode, results=events, note=note)

    async def avatar(self) -> ReflectResult:
        """Derive the avatar's cards across people from what they shared with everyone."""
        shared = await off_loop(self.store.every, self.shared())
        wanted = reflection.cards(shared, across=True)
        stored = await off_loop(self.store.every, self.derived(AVATAR_OWNER))
        sources = {h.id: h.payload for h in shared}
        events = await self.apply(AVATAR_OWNER, reflection.plan(stored, wanted, sources), sources)
        return ReflectResult(user_id=None, mode="entity_cards", results=events)

    async def apply(self, user: str, todo: reflection.Plan,
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

    async def rederive(self, memory_ids: Sequence[str]) -> None:
        """Memories changed or went: what was derived from them is derived again (a card, a lesson) or
        removed (an LLM's insight, until the next reflection), so no derived memory outlives its sources."""
        for d in await off_loop(self.store.every, self.derived(sources=memory_ids)):
            user = d.payload.get("user_id") or AVATAR_OWNER
            key = reflection.key_of(d)
            wanted: list[reflection.Derived] = []
            hits: list[Hit] = []
            across = key.startswith(reflection.AVATAR)
            if key.removeprefix(reflection.AVATAR).startswith("entity:"):
                name = key.removeprefix(reflection.AVATAR).removeprefix("entity:")
                where = self.shared() if across else self.said(user)
                where.any_of["entities"] = [name]
                hits, _ = await off_loop(self.store.scroll, where, reflection.MAX_SOURCES + 1)
                wanted = [c] if (c := reflection.card(name, hits, across)) else []
            elif key.startswith("tool:"):
                tool = key.removeprefix("tool:")
                hits = await off_loop(self.store.every, self.called(user, tool))
                wanted = [t] if (t := reflection.lesson(tool, hits)) else []
            sources = {h.id: h.payload for h in hits}
            await self.apply(user, reflection.plan([d], wanted, sources), sources)
