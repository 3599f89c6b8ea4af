"""Follow-ups, the design's planning: what a person's memories say will happen, kept beside them (found again
when a memory's text changes), listed for who may hear them, and marked raised, done or moved."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from mcp_servers.core import cursors
from mcp_servers.core.auth import Principal
from mcp_servers.core.errors import NotFound, UserError
from mcp_servers.core.store import Hit, VectorStore
from mcp_servers.core.store.aio import off_loop
from mcp_servers.core.visibility import may_hear

from . import reflection, visibility
from .followups import detect
from .models import Followup, FollowupList, FollowupStatus
from .store_followups import FollowupBook

MAX_FOLLOWUPS = 10_000  # a person's follow-ups read at once to filter them by who is present


class Planning:
    """One avatar's follow-ups (`book`), read with the visibility of their source memories (`store`)."""

    def __init__(self, store: VectorStore, book: FollowupBook):
        self.store = store
        self.book = book

    async def note(self, scope: str, owner: str | None, memory_id: str, text: str, when: datetime) -> None:
        """Record what a person's memory says will happen, due when they said it would."""
        if owner and scope in ("user", "session") and (found := detect(text, when)):
            await off_loop(self.book.add, owner, memory_id, found)

    async def renote(self, stored: Hit) -> None:
        """A memory's text changed: its follow-ups are found again in the new text (none in a derived one)."""
        p = stored.payload
        await off_loop(self.book.drop_memories, [stored.id])
        if p.get("source") == reflection.DERIVED:
            return
        when = datetime.fromisoformat(p["occurred_at"]) if p.get("occurred_at") else datetime.now(UTC)
        await self.note(p["scope"], p.get("user_id") or None, stored.id, p["content"], when)

    async def page(self, user: str, due_before: datetime | None, include_done: bool, limit: int, cursor: str | None,
                   present: Sequence[str] | None = None) -> FollowupList:
        """A page of a person's follow-ups, soonest due first, each with its source memory's visibility; with
        `present`, only those everyone present may hear (`core.visibility.may_hear`, the rule of memory_search)."""
        asked = [user, due_before.isoformat() if due_before else None, include_done, present]
        offset = cursors.decode_offset("followup_list", asked, cursor)
        if present is None:
            items, total = await off_loop(self.book.page, user, due_before, include_done, limit, offset)
            items = await self._with_visibility(items)
        else:
            every, _ = await off_loop(self.book.page, user, due_before, include_done, MAX_FOLLOWUPS, 0)
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

    async def update(self, principal: Principal, followup_id: str, status: FollowupStatus | None,
                     due_at: datetime | None) -> Followup:
        """Change a follow-up of the caller's own (or, for the owner, anyone's)."""
        found = await off_loop(self.book.get, followup_id)
        if found is None or (principal.user_id is not None and found.user_id != principal.user_id):
            raise NotFound(f"No follow-up with id {followup_id}.")
        if status is None and due_at is None:
            raise UserError("Nothing to change: give 'status' and/or 'due_at'.")
        updated = await off_loop(self.book.update, followup_id, status, due_at)
        if updated is None:
            raise NotFound(f"No follow-up with id {followup_id}.")
        return updated
