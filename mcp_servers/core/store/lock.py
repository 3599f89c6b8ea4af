"""One process owns an embedded store directory; another one gets a clear error, never corruption."""

from __future__ import annotations

import fcntl
import json
import os
import sys
from pathlib import Path
from typing import IO

from ..errors import StoreLocked

# The URL this process serves its MCP endpoints on, written into the lock so that a second
# process can tell the person where to connect instead (set by the server runner).
advertised_url: str | None = None


class DirLock:
    """An advisory `flock` on `<dir>/.lock`, released when the process exits (even on kill -9)."""

    def __init__(self, directory: Path):
        self.path = directory / ".lock"
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            try:
                owner = json.loads(fh.read() or "{}")
            except ValueError:
                owner = {}
            fh.close()
            url = owner.get("url")
            hint = (
                f"connect to the server it runs at {url} instead"
                if url
                else "stop it, or serve over HTTP from one process (`alphaavatar up`) and connect to that"
            )
            raise StoreLocked(
                f"The store at {self.path.parent} is in use by process {owner.get('pid', '?')} "
                f"({owner.get('cmd', 'unknown command')}); {hint}."
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({"pid": os.getpid(), "cmd": " ".join(sys.argv)[:200], "url": advertised_url}))
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None
