"""The change history of every memory, in SQLite with secure deletion (erasure leaves no bytes)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from .models import HistoryEvent

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  memory_id TEXT NOT NULL,
  user_id TEXT,
  event TEXT NOT NULL,
  old TEXT,
  new TEXT,
  at TEXT NOT NULL,
  actor TEXT
);
CREATE INDEX IF NOT EXISTS events_memory ON events(memory_id);
CREATE INDEX IF NOT EXISTS events_user ON events(user_id);
"""


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


class History:
    def __init__(self, path: Path):
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA secure_delete=ON")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)

    def record(self, rows: Sequence[tuple[str, str | None, str, str | None, str | None, str | None]]) -> None:
        """Rows of (memory_id, user_id, event, old, new, actor), written in one transaction."""
        at = now_iso()
        with self._lock:
            self._db.executemany(
                "INSERT INTO events(memory_id, user_id, event, old, new, at, actor) VALUES (?,?,?,?,?,?,?)",
                [(m, u, e, o, n, at, a) for (m, u, e, o, n, a) in rows],
            )

    def events(self, memory_id: str, limit: int = 100) -> list[HistoryEvent]:
        with self._lock:
            cur = self._db.execute(
                "SELECT event, old, new, at, actor FROM events WHERE memory_id=? ORDER BY seq LIMIT ?",
                (memory_id, limit),
            )
            return [HistoryEvent(event=e, old=o, new=n, at=at, actor=a) for e, o, n, at, a in cur.fetchall()]

    def forget_user(self, user_id: str) -> int:
        """Delete the user's events, then checkpoint and vacuum so no page keeps them."""
        with self._lock:
            n = self._db.execute("DELETE FROM events WHERE user_id=?", (user_id,)).rowcount
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.execute("VACUUM")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            return int(n)

    def close(self) -> None:
        with self._lock:
            self._db.close()
