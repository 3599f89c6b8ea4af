"""Who may hear a memory: its stored visibility and the store filter for an audience.

The rule is `mcp_servers.core.visibility` (docs/visibility.md); here it is applied to memories:
avatar-scope knowledge is `everyone`, a memory stored before visibility existed reads as
`private`, and `audible` says the rule as a payload filter, so it runs inside the store query.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mcp_servers.core.errors import UserError
from mcp_servers.core.store import VectorStore, Where
from mcp_servers.core.visibility import SOMEONE, Visibility, chosen, others


def of(payload: Mapping[str, Any]) -> Visibility:
    """A stored memory's visibility (avatar scope: everyone; stored before visibility: private)."""
    if payload.get("scope") == "avatar":
        return "everyone"
    v = payload.get("visibility")
    return v if v in ("present", "everyone") else "private"


def audience(visibility: Visibility | None, present: Sequence[str], owner: str | None, scope: str) -> dict[str, Any]:
    """The payload fields of what was just said: its visibility and `heard_by`."""
    heard = sorted(set(present))
    if scope == "avatar":
        if visibility not in (None, "everyone"):
            raise UserError("Avatar-scope memories are for everyone; use scope 'user' for a private one.")
        return {"visibility": "everyone", "heard_by": heard}
    return {"visibility": chosen(visibility, heard, owner), "heard_by": heard}


def audible(where: Where, user: str, present: Sequence[str] | None) -> Where:
    """`where` narrowed to the memories of `user` (and the avatar's) everyone in `present` may hear:
    `core.visibility.may_hear` as store conditions (keyword indexes on visibility and heard_by)."""
    rest = others(user, present)
    if not rest:
        return where
    branches = [Where(equals={"scope": "avatar"}), Where(equals={"visibility": "everyone"})]
    if SOMEONE not in rest:
        branches.append(Where(equals={"visibility": "present"}, all_of={"heard_by": rest}))
    where.either = branches
    return where


def unhear(store: VectorStore, avatar_id: str, user: str) -> int:
    """Take an erased user out of the `heard_by` of everyone else's memories (one write per distinct
    list that remains); how many memories named them."""
    where = Where(equals={"avatar_id": avatar_id}, all_of={"heard_by": [user]})
    remaining: dict[tuple[str, ...], list[str]] = {}
    cursor: str | None = None
    while True:
        hits, cursor = store.scroll(where, 1000, cursor)
        for h in hits:
            remaining.setdefault(tuple(p for p in h.payload["heard_by"] if p != user), []).append(h.id)
        if cursor is None:
            break
    for heard, ids in remaining.items():
        store.set_payload(ids, {"heard_by": list(heard)})
    return sum(len(ids) for ids in remaining.values())
