"""Bounds on free-form JSON that we store, checked when it is written.

Qdrant Edge 0.9 writes a payload nested about 123 levels deep but cannot read it back: the
shard's reads fail ("recursion limit exceeded") and so does reopening its write-ahead log, so
one such value would break every later read of the store. `tests/test_bad_input.py` finds that
limit on each run; our bound keeps far below it, leaving room
for the levels the servers add around a value (payload → metadata → arguments → ...).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import AfterValidator

MAX_DEPTH = 32  # levels of objects/lists inside one stored value
MAX_BYTES = 64 * 1024  # its size as UTF-8 JSON


def depth(value: Any, stop: int = MAX_DEPTH) -> int:
    """How many levels of objects and lists `value` has (a scalar has 0), without recursion;
    the walk stops once it is deeper than `stop`."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        level += 1
        deepest = max(deepest, level)
        if level > stop:
            break
        stack.extend((child, level) for child in children)
    return deepest


def check_stored(value: Any, what: str = "this value", max_depth: int = MAX_DEPTH, max_bytes: int = MAX_BYTES) -> Any:
    """`value` itself, or ValueError saying which bound it passes and what to do instead."""
    if depth(value, max_depth) > max_depth:
        raise ValueError(f"{what} is nested more than {max_depth} levels deep (objects and lists inside each "
                         f"other); at most {max_depth} can be stored, so flatten it or store the deep part as a string")
    size = len(json.dumps(value, ensure_ascii=False, default=str).encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise ValueError(f"{what} takes {size:,} bytes as JSON; at most {max_bytes:,} can be stored, so keep "
                         "only what is worth remembering (large data belongs in a file or the corpus)")
    return value


def bounded(max_depth: int = MAX_DEPTH, max_bytes: int = MAX_BYTES) -> AfterValidator:
    """The check for a free JSON value kept in a store, for `Annotated[..., bounded()]`.

    The published schema does not change; the bounds are checked when a value arrives. A value
    that the server stores inside another bounded one takes smaller bounds.
    """
    return AfterValidator(lambda v: v if v is None else check_stored(v, "this value", max_depth, max_bytes))


StoredObject = Annotated[dict[str, Any], bounded()]  # metadata and the like
