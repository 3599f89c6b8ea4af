"""Who may hear a memory: its visibility, who heard it said, and the store filter for an audience.

A memory is `private` (its person only), `present` (its person and those in `heard_by`, the
people present when it was said) or `everyone`. Avatar-scope knowledge is `everyone`; a memory
stored before visibility existed reads as `private`. The rules are in docs/visibility.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import Field

from mcp_servers.core.errors import UserError
from mcp_servers.core.store import Where

Visibility = Literal["private", "present", "everyone"]
SOMEONE = "someone"  # an unknown person in `present`: never taken to be one who heard anything
PersonId = Annotated[str, Field(min_length=1, max_length=200)]
People = Annotated[list[PersonId], Field(max_length=50)]
PRESENT_HELP = (f"User ids of everyone present, the speaker included; '{SOMEONE}' for each unknown person.")


def of(payload: Mapping[str, Any]) -> Visibility:
    """A stored memory's visibility (avatar scope: everyone; stored before visibility: private)."""
    if payload.get("scope") == "avatar":
        return "everyone"
    v = payload.get("visibility")
    return v if v in ("present", "everyone") else "private"


def audience(visibility: Visibility | None, present: Sequence[str], owner: str | None, scope: str) -> dict[str, Any]:
    """The payload fields of a new memory: its visibility (given, or `present` when others heard it,
    else `private`) and `heard_by`."""
    heard = sorted(set(present))
    if scope == "avatar":
        if visibility not in (None, "everyone"):
            raise UserError("Avatar-scope memories are for everyone; use scope 'user' for a private one.")
        return {"visibility": "everyone", "heard_by": heard}
    if visibility is None:
        visibility = "present" if set(heard) - {owner} else "private"
    return {"visibility": visibility, "heard_by": heard}


def audible(where: Where, user: str, present: Sequence[str] | None) -> Where:
    """`where` narrowed to the memories of `user` (and the avatar's) everyone in `present` may hear.

    With nobody but `user` present, all of them: a private memory is told to its own person. With
    others, a memory is kept if it is for everyone, or if it was said in front of every one of them
    (an unknown person never counts as one who heard it). The conditions run in the store query."""
    others = sorted(set(present or ()) - {user})
    if not others:
        return where
    branches = [Where(equals={"scope": "avatar"}), Where(equals={"visibility": "everyone"})]
    if SOMEONE not in others:
        branches.append(Where(equals={"visibility": "present"}, all_of={"heard_by": others}))
    where.either = branches
    return where
