"""Page cursors: one codec for every paginated tool.

A cursor is `<fingerprint>.<position>`: the fingerprint hashes the tool and what it was asked
(filters, user, query), so a cursor handed to another list, search or user is a clear error
instead of a wrong page; the position is a store point id, a result offset, or a mark (the last value of a list ordered by
a value, and the last id among the results that share it). An empty cursor
means the first page, as if none were given.
"""

from __future__ import annotations

import hashlib
import json
import re

from .errors import UserError

_OFFSET = re.compile(r"\d{1,9}")
_SEQ = re.compile(r"\d{1,18}")  # an audit entry's sequence number (store trails: microseconds)
_MARK = re.compile(r"-?[0-9]{1,20}(\.[0-9]{1,20})?(e-?[0-9]{1,3})?_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_POINT_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")  # our stores' ids: UUIDs


def _fingerprint(listing: str, scope: object) -> str:
    blob = json.dumps([listing, scope], sort_keys=True, default=str, ensure_ascii=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def encode(listing: str, scope: object, position: str | int | None) -> str | None:
    """The cursor of the page starting at `position` (None: there is no next page)."""
    return None if position is None else f"{_fingerprint(listing, scope)}.{position}"


def _position(listing: str, scope: object, cursor: str | None, form: re.Pattern[str]) -> str | None:
    if not cursor:
        return None
    fingerprint, _, position = cursor.partition(".")
    if not form.fullmatch(position) or not re.fullmatch(r"[0-9a-f]{12}", fingerprint):
        raise UserError(f"This cursor is not one {listing} returned: pass the next_cursor of the previous page "
                        "unchanged, or leave the cursor out to start from the first page.")
    if fingerprint != _fingerprint(listing, scope):
        raise UserError(f"This cursor belongs to a different listing (another tool, user, filter or query) than "
                        f"this {listing} call: keep the other arguments as they were for the previous page, or "
                        "leave the cursor out to start again.")
    return position


def decode_id(listing: str, scope: object, cursor: str | None) -> str | None:
    """The store point id the page starts at (None: the first page)."""
    return _position(listing, scope, cursor, _POINT_ID)


def decode_offset(listing: str, scope: object, cursor: str | None) -> int:
    """How many results come before the page (0: the first page)."""
    return int(_position(listing, scope, cursor, _OFFSET) or 0)


def decode_seq(listing: str, scope: object, cursor: str | None) -> int | None:
    """The sequence number a page of newest-first entries starts before (None: the first page)."""
    position = _position(listing, scope, cursor, _SEQ)
    return None if position is None else int(position)


def mark(value: float, point_id: str) -> str:
    """The position after a page ordered by a value: its last value and the last point id shown
    among those with that value (repr round-trips the float exactly)."""
    return f"{value!r}_{point_id}"


def decode_mark(listing: str, scope: object, cursor: str | None) -> tuple[float, str] | None:
    """The (value, point id) a page ordered by a value starts after (None: the first page)."""
    position = _position(listing, scope, cursor, _MARK)
    if position is None:
        return None
    value, _, point_id = position.partition("_")
    return float(value), point_id
