"""The typed profile: which fields exist, what values they take, and how patches change them.

A profile is a list of facts; each fact is one value of one field with its provenance (source,
source_ref, confidence, evidence, first and last seen). Patches are validated as a whole before
any is applied, and every applied patch yields one change record for the history.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field

from mcp_servers.core.errors import UserError
from mcp_servers.core.visibility import HEARD_HELP, SOMEONE, Visibility, chosen, may_hear

Source = Literal["session", "tool", "manual"]
Value = str | float | bool | dict[str, str]

SCALARS = ("identity.name", "identity.preferred_name", "identity.pronouns", "identity.location",
           "identity.time_zone", "identity.occupation", "communication_style")
LISTS = ("identity.languages", "preferences", "relationships", "goals", "routines", "important_dates",
         "accessibility_notes")
RECORDS = {"relationships": ("name", "relation"), "important_dates": ("label", "date")}
CUSTOM = re.compile(r"custom\.[a-z][a-z0-9_]{0,39}")
MAX_TEXT = 500
MAX_FACTS = 500
FIELDS_HELP = (
    "Fields: " + ", ".join(SCALARS) + " (one value: set/remove); " + ", ".join(LISTS)
    + " (many values: add/remove); custom.<snake_case_key> (one value). relationships take "
    '{"name": ..., "relation": ...}, important_dates {"label": ..., "date": "YYYY-MM-DD" or "MM-DD"}, '
    "identity.time_zone an IANA name such as Europe/Paris."
)


class Patch(BaseModel):
    """One change to a profile."""

    op: Literal["set", "add", "remove"]
    field: str = Field(max_length=60, description="e.g. identity.location, preferences, custom.team. " + FIELDS_HELP)
    value: Value | None = Field(default=None, description="The value (for remove: the value to take out of a list).")
    confidence: float = Field(default=1.0, ge=0.0, le=1.0)
    evidence: str | None = Field(default=None, max_length=1000, description="Where this comes from (a quote).")
    visibility: Visibility | None = Field(
        default=None, description="Who may hear this fact: 'private' (the person only), 'present' (also those "
        "present when it was said), 'everyone'. Default: 'everyone' for identity.name; else 'present' when "
        "others were present, else 'private'. Given for a fact already held, it changes who may hear it.")


class Fact(BaseModel):
    value: Value
    source: Source
    source_ref: str | None = Field(default=None, description="Session id or tool name it came from.")
    confidence: float
    first_seen: str
    last_seen: str
    evidence: str | None = None
    visibility: Visibility = "private"
    heard_by: list[str] = Field(default_factory=list, description=HEARD_HELP)


class Identity(BaseModel):
    name: Fact | None = None
    preferred_name: Fact | None = None
    pronouns: Fact | None = None
    languages: list[Fact] = Field(default_factory=list)
    location: Fact | None = None
    time_zone: Fact | None = None
    occupation: Fact | None = None


class Profile(BaseModel):
    user_id: str
    name: str
    provisional: bool
    identity: Identity
    preferences: list[Fact] = Field(default_factory=list)
    relationships: list[Fact] = Field(default_factory=list)
    goals: list[Fact] = Field(default_factory=list)
    routines: list[Fact] = Field(default_factory=list)
    important_dates: list[Fact] = Field(default_factory=list)
    communication_style: Fact | None = None
    accessibility_notes: list[Fact] = Field(default_factory=list)
    custom: dict[str, Fact] = Field(default_factory=dict)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} needs a non-empty text value")
    value = " ".join(value.split())
    if len(value) > MAX_TEXT:
        raise ValueError(f"{what} is longer than {MAX_TEXT} characters")
    return value


def _date(value: str) -> str:
    for fmt, out in (("%Y-%m-%d", "%Y-%m-%d"), ("%m-%d", "%m-%d"), ("--%m-%d", "%m-%d")):
        try:
            parsed = datetime.strptime(value, fmt)
        except ValueError:
            continue
        if fmt != "%Y-%m-%d":
            date(2000, parsed.month, parsed.day)  # Feb 29 is a real birthday
        return parsed.strftime(out)
    raise ValueError(f"date {value!r} is not YYYY-MM-DD or MM-DD")


def clean_value(field: str, value: Any) -> Value:
    """The canonical form of a value for a field, or ValueError saying what is wrong."""
    if field in RECORDS:
        keys = RECORDS[field]
        if not isinstance(value, dict) or set(value) - set(keys) or not all(value.get(k) for k in keys):
            raise ValueError(f"{field} takes {{{', '.join(repr(k) for k in keys)}}}")
        record = {k: _text(value[k], f"{field}.{k}") for k in keys}
        if field == "important_dates":
            record["date"] = _date(record["date"])
        return record
    if field.startswith("custom."):
        if isinstance(value, bool | int | float):
            return value
        return _text(value, field)
    text = _text(value, field)
    if field == "identity.time_zone":
        try:
            ZoneInfo(text)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{text!r} is not an IANA time zone such as Europe/Paris") from None
    return text


def key(value: Value) -> str:
    """Two values with the same key are the same fact (case and spacing ignored)."""
    if isinstance(value, dict):
        return "|".join(str(value[k]).casefold() for k in sorted(value))
    return str(value).casefold()


def check(patch: Patch) -> Patch:
    """The patch with its value in canonical form, or ValueError naming the problem."""
    field = patch.field.strip()
    if field not in SCALARS and field not in LISTS and not CUSTOM.fullmatch(field):
        raise ValueError(f"unknown field {field!r}. {FIELDS_HELP}")
    is_list = field in LISTS
    if patch.op == "set" and is_list:
        raise ValueError(f"{field} holds many values: use add or remove")
    if patch.op == "add" and not is_list:
        raise ValueError(f"{field} holds one value: use set")
    if patch.op == "remove" and field == "identity.name":
        raise ValueError("a user keeps a name: set identity.name (or call user_rename) instead")
    if patch.op == "remove" and patch.value is None:
        if is_list:
            raise ValueError(f"say which value to remove from {field}")
        return patch.model_copy(update={"field": field})
    return patch.model_copy(update={"field": field, "value": clean_value(field, patch.value)})


def check_all(patches: Sequence[Patch]) -> list[Patch]:
    """Every patch checked, or one UserError naming each bad one (so nothing is changed)."""
    out, problems = [], []
    for i, p in enumerate(patches):
        try:
            out.append(check(p))
        except ValueError as exc:
            problems.append(f"patch {i + 1} ({p.op} {p.field}): {exc}")
    if problems:
        raise UserError("Nothing was changed. " + "; ".join(problems))
    return out


def visibility(fact: dict[str, Any]) -> Visibility:
    """A stored fact's visibility (a fact stored before visibility: the name everyone's, the rest private)."""
    return fact.get("visibility") or ("everyone" if fact["field"] == "identity.name" else "private")


def apply(facts: list[dict[str, Any]], patch: Patch, source: Source, source_ref: str | None,
          owner: str | None = None, heard_by: Sequence[str] = ()) -> dict[str, Any] | None:
    """Apply one checked patch to `facts` in place; the change record, or None if nothing changed.
    `heard_by`: who was present when `owner` said it."""
    at = now()
    change: dict[str, Any] = {"field": patch.field, "op": patch.op, "old": None, "new": None, "source": source,
              "source_ref": source_ref, "confidence": patch.confidence, "evidence": patch.evidence, "at": at}
    same_field = [f for f in facts if f["field"] == patch.field]
    if patch.op == "remove":
        victims = [f for f in same_field if patch.value is None or key(f["value"]) == key(patch.value)]
        if not victims:
            return None
        for f in victims:
            facts.remove(f)
        change["old"] = victims[0]["value"]
        return change
    assert patch.value is not None
    match = next((f for f in same_field if key(f["value"]) == key(patch.value)), None)
    if match is not None:  # seen again: the fact gets fresher and, if so, surer
        match.update(last_seen=at, confidence=max(match["confidence"], patch.confidence))
        shown = patch.visibility is not None and patch.visibility != visibility(match)
        if shown:
            match["visibility"] = patch.visibility
        change.update(op="visibility" if shown else "confirm", old=match["value"], new=match["value"],
                      visibility=visibility(match))
        return change
    if len(facts) >= MAX_FACTS:
        raise ValueError(f"a profile holds at most {MAX_FACTS} facts; remove some first")
    if patch.op == "set" and same_field:
        change["old"] = same_field[0]["value"]
        facts.remove(same_field[0])
    heard = sorted(set(heard_by))
    shown_to = patch.visibility or ("everyone" if patch.field == "identity.name" else chosen(None, heard, owner))
    facts.append({"field": patch.field, "value": patch.value, "source": source, "source_ref": source_ref,
                  "confidence": patch.confidence, "first_seen": at, "last_seen": at, "evidence": patch.evidence,
                  "visibility": shown_to, "heard_by": heard})
    change.update(new=patch.value, visibility=shown_to)
    return change


def merge(target: dict[str, Any], source: dict[str, Any]) -> list[dict[str, Any]]:
    """Give `source`'s facts to `target` in place (a one-value field keeps the target's value; list
    values are added when new); a provisional target takes a named source's name. The facts added."""
    added = []
    for fact in source["facts"]:
        same = [f for f in target["facts"] if f["field"] == fact["field"]]
        if fact["field"] in LISTS:
            if any(key(f["value"]) == key(fact["value"]) for f in same):
                continue
        elif same:
            continue  # a one-value field: the remaining user's value wins
        target["facts"].append(dict(fact))
        added.append(fact)
    if target.get("provisional") and not source.get("provisional"):
        target["name"] = source["name"]
        target["facts"] = [f for f in target["facts"] if f["field"] != "identity.name"]
        target["facts"].append(next(f for f in source["facts"] if f["field"] == "identity.name"))
    target["provisional"] = bool(target.get("provisional") and source.get("provisional"))
    target["updated_at"] = now()
    return added


def merge_changes(added: list[dict[str, Any]], source: dict[str, Any], target: dict[str, Any]) -> list[dict[str, Any]]:
    """The history records of a merge: one per fact added, and one for the user merged away."""
    at = now()
    return [
        {"field": f["field"], "op": "merge", "old": None, "new": f["value"], "source": f["source"],
         "source_ref": f.get("source_ref"), "confidence": f["confidence"], "evidence": f.get("evidence"),
         "at": at} for f in added
    ] + [{"field": "user", "op": "merge", "old": source["name"], "new": target["name"], "source": "manual",
          "source_ref": source["user_id"], "at": at}]


def build(user: dict[str, Any], present: Sequence[str] | None = None) -> Profile:
    """The typed profile of a stored user; with `present`, only the facts everyone present may hear
    (a hidden name shows as 'someone')."""
    identity: dict[str, Any] = {}
    sections: dict[str, Any] = {}
    custom: dict[str, Fact] = {}
    called = user["name"]
    for f in user.get("facts", []):
        if not may_hear(visibility(f), f.get("heard_by") or [], user["user_id"], present):
            if f["field"] == "identity.name":
                called = SOMEONE
            continue
        fact = Fact(**{**{k: f[k] for k in Fact.model_fields if k in f}, "visibility": visibility(f)})
        field = f["field"]
        if field.startswith("custom."):
            custom[field.removeprefix("custom.")] = fact
            continue
        section, _, name = field.partition(".")
        target, attr = (identity, name) if section == "identity" else (sections, section)
        if field in LISTS:
            target.setdefault(attr, []).append(fact)
        else:
            target[attr] = fact
    return Profile(user_id=user["user_id"], name=called, provisional=user.get("provisional", False),
                   identity=Identity(**identity), custom=custom, **sections)


def render(facts: list[dict[str, Any]]) -> str:
    """The profile as plain text (what profile_search matches against)."""
    lines = []
    for f in facts:
        value = f["value"]
        text = ", ".join(f"{k} {v}" for k, v in value.items()) if isinstance(value, dict) else str(value)
        lines.append(f"{f['field'].replace('identity.', '').replace('_', ' ')}: {text}")
    return "\n".join(lines)
