"""Who may hear what a person said: the rule memory and persona share (docs/visibility.md).

What a person said is `private` (them only), `present` (them and `heard_by`, the people present
when it was said) or `everyone`. An audience (`present`: everyone present now, the speaker
included) may hear it when everyone in it may.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import Field

Visibility = Literal["private", "present", "everyone"]
SOMEONE = "someone"  # an unknown person in `present`: never taken to be one who heard anything
PersonId = Annotated[str, Field(min_length=1, max_length=200)]
People = Annotated[list[PersonId], Field(max_length=50)]
PRESENT_HELP = f"User ids of everyone present, the speaker included; '{SOMEONE}' for each unknown person."
HEARD_HELP = "User ids of the people present when it was said."
VISIBILITY_HELP = ("Who may hear it: 'private' (its person only), 'present' (also those present when it was said), "
                   "'everyone'. Default: 'present' when `present` names anyone besides its person, else 'private'.")


def others(owner: str | None, present: Sequence[str] | None) -> list[str]:
    """The people in `present` besides `owner`, each once, in order."""
    return sorted(set(present or ()) - {owner})


def chosen(visibility: Visibility | None, heard_by: Sequence[str], owner: str | None) -> Visibility:
    """What a person just said: the visibility given, else `present` when others heard it, else `private`."""
    return visibility or ("present" if others(owner, heard_by) else "private")


def may_hear(visibility: Visibility, heard_by: Sequence[str], owner: str | None, present: Sequence[str] | None) -> bool:
    """Whether everyone `present` may hear what `owner` said with this visibility, heard by `heard_by`."""
    rest = others(owner, present)
    if not rest or visibility == "everyone":
        return True
    return visibility == "present" and SOMEONE not in rest and set(rest) <= set(heard_by)
