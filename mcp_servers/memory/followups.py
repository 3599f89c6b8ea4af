"""Follow-ups: what a person said will happen or they will do, due at a time resolved from their words.

Without an LLM, rules catch a sentence that names an explicit time ahead of when it was said
("my exam is on Friday", "remind me to call my mother tomorrow at six", "we fly to Lisbon in two
weeks") and says it as a plan or a fixed event; past events and vague wishes ("maybe someday")
are not follow-ups. The due time is resolved in the time zone `occurred_at` carries: the hour
named, else 09:00 on the first day of the span. Follow-ups live in SQLite beside the history
(secure deletion, so erasure leaves no bytes), each with its source memory: deleting the memory
removes its follow-ups, forgetting a user removes all of theirs.
"""

from __future__ import annotations

import re
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .dates import mentions
from .history import now_iso, open_db
from .models import Followup, FollowupStatus

_SENTENCES = re.compile(r"(?<=[.!?])\s+|\n")
_SPEAKER = re.compile(r"^\s*[^\W\d_][\w .'-]{0,39}:\s")
_PLAN = re.compile(
    r"\b(?:will|shall|going to|gonna|plan(?:ning)? to|have to|need to|must|'ll|remind me|is on|are on|is at|"
    r"starts?|begins?|appointment|exam|interview|flight|fly(?:ing)?|meeting|deadline|due|trip|wedding|birthday|"
    r"surgery|concert|match|party|visit(?:ing)?)\b",
    re.IGNORECASE,
)
_VAGUE = re.compile(r"\b(?:maybe|perhaps|might|someday|one day|i wish|wish i|hope to|would love|would like|if only)\b",
                    re.IGNORECASE)
_REMIND = re.compile(r"\bremind me\b", re.IGNORECASE)
_WORD_HOURS = {w: n for n, w in enumerate("one two three four five six seven eight nine ten eleven twelve".split(), 1)}
_TIME = re.compile(
    r"\bat\s+(?P<h>\d{1,2}|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)"
    r"(?::(?P<m>\d\d))?\s*(?P<ampm>a\.?m\.?|p\.?m\.?)?(?!\w)|\b(?P<noon>noon|midday)\b",
    re.IGNORECASE,
)
MORNING = 9  # the hour a follow-up for a whole day falls due


@dataclass(frozen=True)
class Found:
    """A follow-up found in a text: the sentence, when it falls due (aware), and its kind."""

    text: str
    due: datetime
    kind: str  # "reminder" (remind me ...) or "event"


def detect(text: str, when: datetime) -> list[Found]:
    """The follow-ups in `text`, said at `when` (aware: its zone is the person's)."""
    body = _SPEAKER.sub("", text, count=1)
    out: list[Found] = []
    for sentence in (s.strip() for s in _SENTENCES.split(body)):
        if not sentence or sentence.endswith("?") or _VAGUE.search(sentence) or not _PLAN.search(sentence):
            continue
        ahead = [(a, b) for a, b in mentions(sentence, when) if b > when.timestamp()]
        if not ahead:
            continue
        day = datetime.fromtimestamp(ahead[0][0], when.tzinfo)
        due = _at_time(sentence, day) or day.replace(hour=MORNING)
        if due < when:  # "today" with no hour, or an hour already gone: due now
            due = when
        out.append(Found(sentence, due, "reminder" if _REMIND.search(sentence) else "event"))
    return out


def _at_time(sentence: str, day: datetime) -> datetime | None:
    """The hour the sentence names on `day` ("at six" = 18:00: a bare hour up to seven is the afternoon)."""
    m = _TIME.search(sentence)
    if m is None:
        return None
    if m.group("noon"):
        return day.replace(hour=12)
    raw = m.group("h").lower()
    hour = int(raw) if raw.isdigit() else _WORD_HOURS[raw]
    minute = int(m.group("m") or 0)
    ampm = (m.group("ampm") or "").replace(".", "").lower()
    if hour > 23 or minute > 59 or (ampm and not 1 <= hour <= 12):
        return None
    if (ampm == "pm" and hour < 12) or (not ampm and 1 <= hour <= 7):
        hour += 12
    elif ampm == "am" and hour == 12:
        hour = 0
    return day.replace(hour=hour % 24, minute=minute)


SCHEMA = """
CREATE TABLE IF NOT EXISTS followups (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL,
  memory_id TEXT NOT NULL,
  text TEXT NOT NULL,
  kind TEXT NOT NULL,
  due_at TEXT NOT NULL,
  due_ts REAL NOT NULL,
  status TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS followups_user ON followups(user_id, due_ts);
CREATE INDEX IF NOT EXISTS followups_memory ON followups(memory_id);
"""
_COLUMNS = "id, user_id, memory_id, text, kind, due_at, status, created_at, updated_at"


class Followups:
    """The follow-ups of one memory server (SQLite, one file)."""

    def __init__(self, path: Path):
        self._db = open_db(path, SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add(self, user: str, memory_id: str, found: list[Found]) -> list[Followup]:
        now = now_iso()
        rows = [(str(uuid.uuid4()), user, memory_id, f.text, f.kind, f.due.isoformat(), "open", now, now,
                 f.due.timestamp()) for f in found]
        with self._lock:
            self._db.executemany(f"INSERT INTO followups ({_COLUMNS}, due_ts) VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
        return [self._row(r[:-1]) for r in rows]

    def page(self, user: str, due_before: datetime | None, include_done: bool, limit: int,
             offset: int) -> tuple[list[Followup], int]:
        where, args = ["user_id = ?"], list[object]([user])
        if due_before is not None:
            where.append("due_ts < ?")
            args.append(_aware(due_before).timestamp())
        if not include_done:
            where.append("status = 'open'")
        sql = " AND ".join(where)
        with self._lock:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM followups WHERE {sql} ORDER BY due_ts, id LIMIT ? OFFSET ?",
                                    [*args, limit, offset]).fetchall()
            total = self._db.execute(f"SELECT COUNT(*) FROM followups WHERE {sql}", args).fetchone()[0]
        return [self._row(r) for r in rows], int(total)

    def get(self, followup_id: str) -> Followup | None:
        with self._lock:
            row = self._db.execute(f"SELECT {_COLUMNS} FROM followups WHERE id = ?", (followup_id,)).fetchone()
        return self._row(row) if row else None

    def update(self, followup_id: str, status: FollowupStatus | None, due: datetime | None) -> Followup | None:
        sets, args = ["updated_at = ?"], list[object]([now_iso()])
        if status is not None:
            sets.append("status = ?")
            args.append(status)
        if due is not None:
            sets += ["due_at = ?", "due_ts = ?"]
            args += [_aware(due).isoformat(), _aware(due).timestamp()]
        with self._lock:
            self._db.execute(f"UPDATE followups SET {', '.join(sets)} WHERE id = ?", [*args, followup_id])
        return self.get(followup_id)

    def drop_memories(self, memory_ids: list[str]) -> int:
        """Remove the follow-ups whose source memory is gone."""
        if not memory_ids:
            return 0
        marks = ",".join("?" * len(memory_ids))
        with self._lock:
            return self._db.execute(f"DELETE FROM followups WHERE memory_id IN ({marks})", memory_ids).rowcount

    def forget_user(self, user: str) -> int:
        with self._lock:
            return self._db.execute("DELETE FROM followups WHERE user_id = ?", (user,)).rowcount

    def reassign(self, user: str, into: str) -> int:
        with self._lock:
            return self._db.execute("UPDATE followups SET user_id = ? WHERE user_id = ?", (into, user)).rowcount

    @staticmethod
    def _row(r: tuple[object, ...]) -> Followup:
        keys = [k.strip() for k in _COLUMNS.split(",")]
        return Followup.model_validate(dict(zip(keys, r, strict=True)))


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)

