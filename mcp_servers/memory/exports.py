"""Memory exports, kept until the user is forgotten: files in the user's export folder (embedded), or
points in the Qdrant deployment (`QDRANT_URL`), so an export made on one replica is read through any
other and a forget on any replica erases every export.

In the deployment an export is its parts (text cut to fit a request) and then its manifest, written
last: a reader sees only an export whose manifest is there, so a replica killed mid-export leaves
nothing readable half-written, and the forget that erases the user erases its orphaned parts too.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import shutil
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from mcp_servers.core.files import write_atomically
from mcp_servers.core.store import CollectionSpec, Item, VectorStore, Where

EXPORTS_SPEC = CollectionSpec("exports", dim=1, sparse=False, tenant_fields=("user_id",),
                              keyword_fields=("name", "kind"))
NAME = re.compile(r"memories-[0-9]{8}T[0-9]{12}-[0-9a-f]{6}\.(?:md|json)")
PART_CHARS = 1_000_000  # text per point: a few MB at most in one request, well under a server's limit
PARTS_PER_WRITE = 4
MANIFEST = "manifest"
EXPORT_BUDGET = 24_000  # characters returned inline; the saved export holds the whole of it


def export_uri(user: str, name: str) -> str:
    return f"memory://users/{quote(user, safe='')}/exports/{name}"


def export_name(fmt: Literal["markdown", "json"]) -> str:
    """A new export's name: when it was made, and a random tail so that two replicas never pick one name."""
    return f"memories-{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{secrets.token_hex(3)}.{'md' if fmt == 'markdown' else 'json'}"


class FileExports:
    """One folder per user under the memory server's data folder."""

    def __init__(self, root: Path):
        self.root = root

    def folder(self, user: str) -> Path:
        return self.root / hashlib.sha256(user.encode()).hexdigest()[:16]

    def save(self, user: str, name: str, text: str) -> str | None:
        """Write the export whole (or not at all); the file's path."""
        path = self.folder(user) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, text)
        return str(path)

    def read(self, user: str, name: str) -> str | None:
        path = self.folder(user) / name
        return path.read_text(encoding="utf-8") if NAME.fullmatch(name) and path.is_file() else None

    def count(self, user: str) -> int:
        folder = self.folder(user)
        return len(list(folder.glob("*"))) if folder.exists() else 0

    def forget(self, user: str) -> int:
        n = self.count(user)
        shutil.rmtree(self.folder(user), ignore_errors=True)
        return n

    def close(self) -> None:
        """Files need no closing."""


class StoreExports:
    """Exports as points of `alphaavatar_memory_exports`; every call blocks (run it off the loop)."""

    def __init__(self, store: VectorStore):
        self.store = store

    def save(self, user: str, name: str, text: str) -> str | None:
        """Parts first, then the manifest that makes the export readable; no local file (None)."""
        chunks = [text[i:i + PART_CHARS] for i in range(0, len(text), PART_CHARS)] or [""]
        parts = [Item(str(uuid.uuid4()), {"user_id": user, "name": name, "kind": "part", "part": n, "text": chunk})
                 for n, chunk in enumerate(chunks)]
        for i in range(0, len(parts), PARTS_PER_WRITE):
            self.store.upsert(parts[i:i + PARTS_PER_WRITE])
        self.store.upsert([Item(str(uuid.uuid4()), {"user_id": user, "name": name, "kind": MANIFEST,
                                                    "parts": len(parts), "made": time.time()})])
        return None

    def read(self, user: str, name: str) -> str | None:
        where = Where(equals={"user_id": user, "name": name})
        if not NAME.fullmatch(name) or not self.store.count(Where(equals={**where.equals, "kind": MANIFEST})):
            return None
        texts: dict[int, str] = {}
        cursor: str | None = None
        while True:
            hits, cursor = self.store.scroll(Where(equals={**where.equals, "kind": "part"}), PARTS_PER_WRITE, cursor)
            texts.update((int(h.payload["part"]), h.payload["text"]) for h in hits)
            if cursor is None:
                return "".join(texts[n] for n in sorted(texts))

    def count(self, user: str) -> int:
        return self.store.count(Where(equals={"user_id": user, "kind": MANIFEST}))

    def forget(self, user: str) -> int:
        n = self.count(user)
        self.store.delete_where(Where(equals={"user_id": user}))
        self.store.compact()
        return n

    def close(self) -> None:
        self.store.close()


Exports = FileExports | StoreExports
