"""Memory writes: group-committed, deduplicated, durable, and recorded in the history.

Concurrent adds, updates and deletes queue for one writer (`GroupCommit`): a batch is
deduplicated (against itself and the store), embedded in one call, written in one store
upsert (then one delete) and flushed once, and only then is each caller answered. So an
acknowledged write survives a SIGKILL of the server at any moment, a batch is all or none,
and the history — marked pending before each store write, see `history` — records exactly
the memories that exist, also after a crash (`recover`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np

from mcp_servers.core.batching import GroupCommit
from mcp_servers.core.embeddings import Embedder
from mcp_servers.core.errors import NotFound
from mcp_servers.core.store import Hit, Item, VectorStore, Where
from mcp_servers.core.store.aio import off_loop

from . import retrieval, visibility
from .exports import Exports
from .history import FORGET, REASSIGN, Event, Histories, now_iso
from .models import AddEvent, AddItem, AddResult
from .records import Payloads, fingerprint, memory_id, utc
from .store_followups import FollowupBook

log = logging.getLogger(__name__)

Prepared = tuple[AddItem, str, str | None]  # item, its text, its owner


@dataclass
class Add:
    prepared: Sequence[Prepared]
    actor: str
    source: str
    whens: Sequence[datetime]  # when each item occurred (fixed before embedding: the date is embedded)
    vectors: np.ndarray  # embedded before the write queue, one row per item
    extra: Sequence[dict[str, Any]] = ()  # payload fields set as given, per item (a reflection's sources)


@dataclass
class Update:
    memory_id: str
    content: str | None
    metadata: dict[str, Any] | None
    actor: str
    audience: dict[str, Any] | None = None  # payload fields set as given: visibility, heard_by (and a
    # derived record's derived_from)


@dataclass
class Delete:
    memory_id: str
    actor: str


Request = Add | Update | Delete
_LOST = object()  # an update another replica overtook: planned again on the memory as it is now


class Writer:
    """The one writer of a memory store (per process)."""

    def __init__(self, avatar_id: str, store: VectorStore, history: Histories, embedder: Embedder, exports: Exports,
                 followups: FollowupBook):
        self.avatar_id = avatar_id
        self.store = store
        self.history = history
        self.embedder = embedder
        self.exports = exports  # erased with the user
        self.followups = followups  # erased with the user
        self.lock = asyncio.Lock()  # one batch (or erasure) at a time
        self.commit: GroupCommit[Request, Any] = GroupCommit(self._batch)
        self.payloads = Payloads(avatar_id, store)

    # the calls ------------------------------------------------------------------------------
    async def add(self, prepared: Sequence[Prepared], actor: str, source: str = "verbatim",
                  extra: Sequence[dict[str, Any]] = ()) -> AddResult:
        """Embedded first, outside the write queue: the model works on the next adds while the
        batch before them is written, and the batch itself only plans and writes. (A duplicate is
        embedded for nothing; that is cheaper than a second trip through the queue.)"""
        whens = [utc(it.occurred_at) for it, _, _ in prepared]
        vectors = await self.embedder.aembed([retrieval.embed_text(text, when)
                                              for (_, text, _), when in zip(prepared, whens, strict=True)])
        result: AddResult = await self.commit.submit(Add(prepared, actor, source, whens, vectors, extra))
        return result

    async def update(self, memory_id: str, content: str | None, metadata: dict[str, Any] | None,
                     actor: str, audience: dict[str, Any] | None = None) -> tuple[str, Hit]:
        """(the previous content, the memory as stored now)."""
        result: tuple[str, Hit] = await self.commit.submit(Update(memory_id, content, metadata, actor, audience))
        return result

    async def delete(self, memory_id: str, actor: str) -> Hit:
        hit: Hit = await self.commit.submit(Delete(memory_id, actor))
        return hit

    async def forget(self, user: str) -> tuple[int, int, int]:
        """Erase a user's memories (store compacted), exports, follow-ups and history; marked first, so that a
        crash half-way is finished by `recover`."""
        async with self.lock:
            n = await off_loop(self.store.count, self._user_where(user))
            # a user never stored (no memory, no history) leaves no bytes to compact away: skip the
            # whole-store rewrite, which holds the write lock for seconds
            stored = n > 0 or await off_loop(self.history.has_user, user)
            await off_loop(self.history.intend, [Event("", user, FORGET, None, None, "mcp", now_iso())])
            files = await off_loop(self.exports.count, user)
            events = await off_loop(self._erase, user, stored)
            self.payloads.forget_places({user})
        return n, events, files

    async def reassign(self, user: str, into: str) -> int:
        """Move every memory of `user` (all scopes), its history and its follow-ups to `into`, the memories in
        one store write: all of them or, after a crash, none (`recover` settles the rest either way)."""
        async with self.lock:
            ids = await off_loop(self._ids_of, user)
            at = now_iso()
            rows = [Event(mid, into, REASSIGN, user, into, "mcp", at) for mid in ids]
            txn = await off_loop(self.history.intend, rows)
            try:
                await off_loop(self._erase_cited, user)  # re-derived by the next reflection
                if ids:
                    await off_loop(self.store.set_payload, ids, {"user_id": into, "updated_at": at})
            except Exception:
                await off_loop(self.history.abort, txn)
                raise
            await off_loop(self.followups.reassign, user, into)  # before the mark is cleared: recover repeats it
            await off_loop(self.history.move_user, txn, user, into)
            self.payloads.forget_places({user, into})  # session positions changed
        return len(ids)

    def _ids_of(self, user: str) -> list[str]:
        return [h.id for h in self.store.every(self._user_where(user))]

    def _user_where(self, user: str) -> Where:
        return Where(equals={"avatar_id": self.avatar_id, "user_id": user})

    def _cited(self, user: str) -> Where:
        """The avatar's records quoting this user's memories (`reflection.fields`)."""
        return Where(equals={"avatar_id": self.avatar_id}, any_of={"cites_users": [user]})

    def _erase_cited(self, user: str) -> None:
        """Erase the avatar's records that quote this user's memories, their events too."""
        cited = [h.id for h in self.store.every(self._cited(user))]
        if cited:
            self.history.forget_memories(cited)
            self.store.delete_where(self._cited(user))

    def _erase(self, user: str, compact: bool = True) -> int:
        self._erase_cited(user)  # first: a crash before their own memories go repeats it
        self.store.delete_where(self._user_where(user))
        named = visibility.unhear(self.store, self.avatar_id, user)  # their id in what others said
        if compact or named:
            self.store.compact()
        self.exports.forget(user)
        self.followups.forget_user(user)
        return self.history.forget_user(user)

    def recover(self) -> None:
        """Settle what a crash left pending: keep the history events whose change the store holds,
        drop the others, finish interrupted erasures."""
        for txn, rows in self.history.pending().items():
            forgotten = {r.user_id for r in rows if r.event == FORGET and r.user_id}
            for user in forgotten:
                log.info("finishing an interrupted erasure")
                self._erase(user)
            if forgotten:
                continue
            if rows[0].event == REASSIGN and rows[0].old and rows[0].new:  # one store write: any memory tells
                first = self.store.retrieve([rows[0].memory_id])
                if first and first[0].payload.get("user_id") == rows[0].new:
                    log.info("finishing an interrupted reassignment")
                    self.followups.reassign(rows[0].old, rows[0].new)
                    self.history.move_user(txn, rows[0].old, rows[0].new)
                else:
                    self.history.abort(txn)
                continue
            last = {r.memory_id: r for r in rows}
            stored = {h.id: h for h in self.store.retrieve(list(last))}
            keep = {
                mid for mid, r in last.items()
                if (mid not in stored if r.event == "DELETE" else
                    mid in stored and stored[mid].payload.get("updated_at") == r.at)
            }
            log.info("settled writes a crash cut short", extra={"fields": {"kept": len(keep), "dropped": len(last) - len(keep)}})
            self.history.resolve(txn, keep)

    # the batch ------------------------------------------------------------------------------
    async def _batch(self, requests: list[Request]) -> list[Any]:
        async with self.lock:
            outcomes: list[Any] = [None] * len(requests)
            try:
                items, updated, rows, olds = await off_loop(self._plan_upserts, requests, outcomes)
                if updated:  # an update's vector depends on the stored memory: embedded here
                    vectors = await self.embedder.aembed([embed for embed, _ in updated])
                    items += [replace(item, dense=vec) for (_, item), vec in zip(updated, vectors, strict=True)]
                if items:
                    lost = await off_loop(self._conditionally, rows, items, olds)
                    self._settle_lost(requests, outcomes, lost)
            except Exception:
                self.payloads.forget_places()  # nothing was acknowledged: forget the sequence numbers handed out
                raise
            await off_loop(self._deletes, requests, outcomes)
            retry = [r for r, o in zip(requests, outcomes, strict=True) if o is _LOST]
        if retry:  # another replica changed these memories first: apply them again on top of its change
            again = await self._batch(retry)
            for n, outcome in zip([n for n, o in enumerate(outcomes) if o is _LOST], again, strict=True):
                outcomes[n] = outcome
        return outcomes

    def _conditionally(self, rows: list[Event], items: list[Item], olds: dict[str, str]) -> set[str]:
        """Write new memories only where no point is (another replica may have written the same one) and
        updates only over the version they were planned on; history marked first, as `_durably` does.
        The ids that another writer got to first (their events dropped)."""
        if not self.store.shared:  # this process is the store's one writer: one plain write, one sync
            self._durably(rows, self.store.upsert, items)
            return set()
        txn = self.history.intend(rows)
        try:
            new = [it for it in items if it.id not in olds]
            self.store.upsert([replace(it, payload={**it.payload, "txn": txn}) for it in new], only_new=True)
            for it in items:
                if it.id in olds:
                    self.store.upsert([replace(it, payload={**it.payload, "txn": txn})],
                                      only_if=Where(equals={"updated_at": olds[it.id]}))
        except Exception:
            self.history.abort(txn)
            raise
        won = {h.id for h in self.store.retrieve([it.id for it in items]) if h.payload.get("txn") == txn}
        self.history.resolve(txn, won)
        return {it.id for it in items} - won

    def _durably(self, rows: list[Event], write: Any, *args: Any) -> None:
        """Mark the events, run the store write (which flushes), clear the mark; on error drop them."""
        txn = self.history.intend(rows)
        try:
            write(*args)
        except Exception:
            self.history.abort(txn)
            raise
        self.history.commit(txn)

    def _plan_upserts(self, requests: list[Request], outcomes: list[Any]
                      ) -> tuple[list[Item], list[tuple[str, Item]], list[Event], dict[str, str]]:
        """What the adds and updates of a batch write: the new points, the updated ones (with the text
        to embed for each), their history events, and the version (`updated_at`) each update is planned
        on; answers duplicates and missing memories in `outcomes`."""
        items: list[Item] = []
        updated: dict[str, tuple[str, Item]] = {}  # a memory updated twice in a batch is written once
        rows: list[Event] = []
        adds = [(n, r) for n, r in enumerate(requests) if isinstance(r, Add)]
        hashes = {id(r): [fingerprint(self.avatar_id, it.scope, owner, it.session_id, text) for it, text, owner in r.prepared]
                  for _, r in adds}
        wanted = sorted({h for hs in hashes.values() for h in hs})
        found, _ = self.store.scroll(Where(any_of={"hash": wanted}), len(wanted)) if wanted else ([], None)
        seen: dict[str, str] = {h.payload["hash"]: h.id for h in found}
        ids = self._free_ids([h for h in wanted if h not in seen])
        for n, a in adds:
            events = []
            for n_item, ((it, text, owner), h, when, vec) in enumerate(
                    zip(a.prepared, hashes[id(a)], a.whens, a.vectors, strict=True)):
                if h in seen:
                    events.append(AddEvent(id=seen[h], content=text, event="DUPLICATE"))
                    continue
                mid = seen[h] = ids[h]
                payload, index = self.payloads.new(it, text, owner, h, a.source, when)
                if a.extra:
                    payload.update(a.extra[n_item])
                items.append(Item(mid, payload, vec, index))
                rows.append(Event(mid, owner or "", "ADD", None, text, a.actor, payload["updated_at"]))
                events.append(AddEvent(id=mid, content=text, event="ADD"))
            outcomes[n] = AddResult(results=events, mode=a.source)
        updates = [(n, r) for n, r in enumerate(requests) if isinstance(r, Update)]
        current = {h.id: h.payload for h in self.store.retrieve(sorted({r.memory_id for _, r in updates}))} if updates else {}
        olds = {mid: str(p["updated_at"]) for mid, p in current.items()}
        for n, r in updates:
            if r.memory_id not in current:
                outcomes[n] = NotFound(f"No memory with id {r.memory_id}.")
                continue
            old = current[r.memory_id]
            payload, embed, index = self.payloads.updated(old, r.content, r.metadata)
            payload.update(r.audience or {})
            current[r.memory_id] = payload
            updated[r.memory_id] = (embed, Item(r.memory_id, payload, None, index))
            if r.content is None and r.metadata is None:  # only who may hear it changed
                change = ("VISIBILITY", visibility.of(old), visibility.of(payload))
            else:
                change = ("UPDATE", old["content"], payload["content"])
            rows.append(Event(r.memory_id, old.get("user_id") or "", *change, r.actor, payload["updated_at"]))
            outcomes[n] = (old["content"], Hit(r.memory_id, 0.0, payload))
        return items, list(updated.values()), rows, olds

    def _free_ids(self, hashes: list[str]) -> dict[str, str]:
        """The id each new fingerprint gets: the first of `memory_id(h, 0..)` not held by other content."""
        out: dict[str, str] = {}
        todo = {h: 0 for h in hashes}
        while todo:
            taken = {p.id: p.payload.get("hash") for p in self.store.retrieve([memory_id(h, n) for h, n in todo.items()])}
            for h, n in list(todo.items()):
                mid = memory_id(h, n)
                if taken.get(mid, h) == h:
                    out[h] = mid
                    del todo[h]
                else:
                    todo[h] = n + 1
        return out

    def _settle_lost(self, requests: list[Request], outcomes: list[Any], lost: set[str]) -> None:
        """Adds another replica wrote first are its duplicates; updates it overtook are marked to retry."""
        for n, r in enumerate(requests):
            if isinstance(r, Add) and isinstance(outcomes[n], AddResult):
                for e in outcomes[n].results:
                    if e.event == "ADD" and e.id in lost:
                        e.event = "DUPLICATE"
            elif isinstance(r, Update) and r.memory_id in lost:
                outcomes[n] = _LOST

    def _deletes(self, requests: list[Request], outcomes: list[Any]) -> None:
        deletes = [(n, r) for n, r in enumerate(requests) if isinstance(r, Delete)]
        if not deletes:
            return
        stored = {h.id: h for h in self.store.retrieve(sorted({r.memory_id for _, r in deletes}))}
        rows, ids = [], []
        for n, r in deletes:
            hit = stored.pop(r.memory_id, None)  # a second delete of the same memory finds nothing
            if hit is None:
                outcomes[n] = NotFound(f"No memory with id {r.memory_id}.")
                continue
            ids.append(hit.id)
            rows.append(Event(hit.id, hit.payload.get("user_id") or "", "DELETE", hit.payload["content"], None, r.actor,
                              now_iso()))
            outcomes[n] = hit
        if ids:
            try:
                self._durably(rows, self.store.delete, ids)
            except Exception as exc:
                for n, _ in deletes:
                    outcomes[n] = exc
