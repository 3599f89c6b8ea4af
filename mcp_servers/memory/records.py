"""What a stored memory is: its collection's shape, its id and fingerprint, what links it to others, and its
payload (with where it stands in its session and the turn before it, which the BM25 text carries)."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import deque
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from mcp_servers.core.store import CollectionSpec, VectorStore, Where

from . import retrieval, visibility
from .dates import mentions
from .entities import entities
from .history import now_iso
from .models import AddItem


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


def utc(dt: datetime | None) -> datetime:
    if dt is None:
        return datetime.now(UTC)
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def links(text: str, when: datetime) -> dict[str, Any]:
    """What a memory is connected by: the names it mentions and the times it mentions, resolved
    against when it occurred (payload fields `entities` and `mentions`)."""
    return {"entities": entities(text), "mentions": [list(span) for span in mentions(text, when)]}


def fingerprint(avatar: str, scope: str, user: str | None, session: str | None, content: str) -> str:
    norm = " ".join(content.split()).lower()
    return hashlib.sha256(json.dumps([avatar, scope, user, session, norm]).encode()).hexdigest()


def memory_id(h: str, n: int = 0) -> str:
    """A new memory's id, from its fingerprint: identical adds on two replicas write one point. (`n` > 0
    when the id is taken by a memory since updated to other content.)"""
    return str(uuid.uuid5(uuid.NAMESPACE_OID, f"{h}#{n}" if n else h))


class Payloads:
    """Builds the payloads of one avatar's memories; keeps each session's next position and last turns while
    the process lives (read from the store the first time a session is written)."""

    def __init__(self, avatar_id: str, store: VectorStore):
        self.avatar_id = avatar_id
        self.store = store
        self._seq: dict[str, int] = {}
        self._recent: dict[str, deque[str]] = {}

    def forget_places(self, users: Collection[str] | None = None) -> None:
        """Drop the cached session positions of these users (all, without `users`): they are read again."""
        for key in [k for k in self._seq if users is None or k.split("|")[1] in users]:
            self._seq.pop(key, None)
            self._recent.pop(key, None)

    def new(self, it: AddItem, text: str, owner: str | None, h: str, source: str,
            when: datetime) -> tuple[dict[str, Any], str]:
        """A new memory's payload and BM25 text."""
        now = now_iso()
        key = f"{it.scope}|{owner or ''}|{it.session_id or ''}"
        base = self._session_where(it.scope, owner, it.session_id)
        if key not in self._seq:
            self._seq[key] = self.store.count(base)
        seq = self._seq[key]
        self._seq[key] = seq + 1
        if key not in self._recent:  # the last few contents of this session, cached while the process lives
            self._recent[key] = deque(self._earlier(base, seq), maxlen=max(retrieval.CONTEXT_TURNS, 1))
        ctx = self._recent[key]
        payload = {
            "content": text, "scope": it.scope, "avatar_id": self.avatar_id, "user_id": owner or "",
            "session_id": it.session_id, "seq": seq, "occurred_at": when.isoformat(), "occurred_ts": when.timestamp(),
            "created_at": now, "created_ts": datetime.now(UTC).timestamp(), "updated_at": now, "source": source,
            "hash": h, "metadata": it.metadata, **visibility.audience(it.visibility, it.present, owner, it.scope),
            **links(text, when),
        }
        if it.scope == "tool" and "tool" in it.metadata:
            payload["tool"] = str(it.metadata["tool"])
        index = retrieval.index_text(text, when, list(ctx))
        ctx.append(text)
        return payload, index

    def updated(self, old: dict[str, Any], content: str | None,
                metadata: dict[str, Any] | None) -> tuple[dict[str, Any], str, str]:
        p = dict(old)
        text = content if content is not None else p["content"]
        when = datetime.fromisoformat(p["occurred_at"]) if p.get("occurred_at") else None
        p.update(content=text, updated_at=now_iso(), **links(text, when or datetime.now(UTC)))
        if metadata is not None:
            p["metadata"] = {**(p.get("metadata") or {}), **metadata}
        p["hash"] = fingerprint(self.avatar_id, p["scope"], p.get("user_id") or None, p.get("session_id"), text)
        where = self._session_where(p["scope"], p.get("user_id") or None, p.get("session_id"))
        index = retrieval.index_text(text, when, self._earlier(where, int(p.get("seq", 0))))
        return p, retrieval.embed_text(text, when), index

    def _session_where(self, scope: str, user: str | None, session: str | None) -> Where:
        where = Where(equals={"avatar_id": self.avatar_id, "scope": scope, "user_id": user or ""})
        if session:
            where.equals["session_id"] = session
        return where

    def _earlier(self, where: Where, seq: int) -> list[str]:
        """The contents of the turns just before position `seq` of the session `where` selects."""
        n = retrieval.CONTEXT_TURNS
        if not n or seq <= 0:
            return []
        w = where.model_copy(deep=True)
        w.ranges["seq"] = (float(seq - n), float(seq - 1))
        hits, _ = self.store.scroll(w, n)
        return [h.payload["content"] for h in sorted(hits, key=lambda h: h.payload.get("seq", 0))]
