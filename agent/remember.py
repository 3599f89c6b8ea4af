"""Background memory writes: queued, retried, journaled to disk, flushed on shutdown.

Each write is appended to a journal before it is sent and marked done once the server took it,
so a crash loses at most the turn in flight: the next agent that starts replays the writes a
dead agent left behind. A write the server rejects (a tool error: bad input) is logged and
dropped, since sending it again cannot succeed.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .mcp_sessions import McpHub, ToolFailed, ToolUnavailable

log = logging.getLogger(__name__)

RETRY_MIN, RETRY_MAX = 0.5, 15.0


@dataclass
class Write:
    id: str
    tool: str
    arguments: dict[str, Any]
    attempts: int = 0


class Journal:
    """An append-only JSONL file of writes and their acknowledgements, locked by its owner."""

    def __init__(self, folder: Path, name: str):
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.path = folder / f"{name}.jsonl"
        self._file: IO[str] = self.path.open("a", encoding="utf-8")
        fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def append(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        self._file.flush()

    def close(self, remove: bool) -> None:
        if remove:
            self.path.unlink(missing_ok=True)
        self._file.close()

    def orphans(self) -> list[Write]:
        """Unacknowledged writes of journals whose owner is gone; those journals are removed."""
        pending: list[Write] = []
        for path in sorted(self.folder.glob("*.jsonl")):
            if path == self.path:
                continue
            try:
                handle = path.open("r+", encoding="utf-8")
            except OSError:
                continue
            with handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    continue  # its agent is still running
                writes: dict[str, Write] = {}
                for line in handle:
                    with contextlib.suppress(ValueError, KeyError, TypeError):
                        record = json.loads(line)
                        if "done" in record:
                            writes.pop(record["done"], None)
                        else:
                            writes[record["id"]] = Write(record["id"], record["tool"], record["arguments"])
                pending.extend(writes.values())
                path.unlink(missing_ok=True)
        return pending


class MemoryWriter:
    """Sends writes in order of submission in the background; never blocks a turn."""

    def __init__(self, hub: McpHub, journal: Journal | None = None):
        self._hub = hub
        self._journal = journal
        self._queue: asyncio.Queue[Write] = asyncio.Queue()
        self._pending = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self.written = 0
        self.rejected = 0

    def start(self) -> None:
        if self._journal is not None:
            orphans = self._journal.orphans()
            if orphans:
                log.info("replaying %d memory writes left by an agent that stopped", len(orphans))
            for write in orphans:
                self._enqueue(write)
        self._task = asyncio.create_task(self._run(), name="memory-writer")

    def submit(self, tool: str, arguments: dict[str, Any]) -> None:
        self._enqueue(Write(uuid.uuid4().hex, tool, arguments))

    def _enqueue(self, write: Write) -> None:
        if self._journal is not None:
            self._journal.append({"id": write.id, "tool": write.tool, "arguments": write.arguments})
        self._pending += 1
        self._idle.clear()
        self._queue.put_nowait(write)

    @property
    def pending(self) -> int:
        return self._pending

    async def _run(self) -> None:
        while True:
            write = await self._queue.get()
            delay = RETRY_MIN
            while True:
                try:
                    await self._hub.call_data(write.tool, write.arguments)
                    self.written += 1
                    break
                except ToolFailed as exc:
                    self.rejected += 1
                    log.warning("memory write %s rejected by the server, dropped: %s", write.tool, exc)
                    break
                except ToolUnavailable as exc:
                    write.attempts += 1
                    log.info("memory write %s not delivered (attempt %d): %s; retrying in %.1fs",
                             write.tool, write.attempts, exc, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RETRY_MAX)
            if self._journal is not None:
                self._journal.append({"done": write.id})
            self._pending -= 1
            if self._pending == 0:
                self._idle.set()

    async def flush(self, within: float) -> bool:
        """Wait until every submitted write is delivered (or rejected); False on timeout."""
        try:
            await asyncio.wait_for(self._idle.wait(), within)
            return True
        except TimeoutError:
            return False

    async def aclose(self, within: float = 10.0) -> None:
        """Flush, then stop. Undelivered writes stay in the journal for the next agent."""
        delivered = await self.flush(within)
        if not delivered:
            log.warning("%d memory writes not delivered before shutdown; kept in the journal for the next start",
                        self._pending)
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._journal is not None:
            self._journal.close(remove=delivered)


def new_journal(folder: Path, session_id: str) -> Journal | None:
    try:
        return Journal(folder, session_id)
    except OSError as exc:
        log.warning("memory journal disabled (%s): writes are still sent, but a crash may lose them", exc)
        return None
