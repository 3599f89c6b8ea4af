"""Files: those named in tool arguments are read only under `ALPHAAVATAR_ALLOWED_ROOTS`, bounded
in bytes; those we write appear whole or not at all."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import UserError
from .settings import Settings


def allowed_file(path: str | Path, settings: Settings, max_bytes: int, off_hint: str = "") -> Path:
    """The resolved file `path` names, once it is under an allowed root, exists and fits `max_bytes`.

    Resolving first means `..` and symlinks cannot step outside a root. `off_hint` is added to
    the error when no root is configured (what the caller can send instead).
    """
    roots = [r.expanduser().resolve() for r in settings.allowed_roots]
    if not roots:
        raise UserError(f"Reading files is off: set ALPHAAVATAR_ALLOWED_ROOTS (JSON list of folders) to allow it.{off_hint}")
    target = Path(path).expanduser().resolve()
    if not any(target.is_relative_to(root) for root in roots):
        raise UserError(f"{path} is outside the allowed roots ({', '.join(map(str, roots))}).")
    if not target.is_file():
        raise UserError(f"No such file: {path}.")
    size = target.stat().st_size
    if size > max_bytes:
        raise UserError(f"{path} is {size:,} bytes; the limit is {max_bytes:,}.")
    return target


def write_atomically(path: Path, text: str) -> None:
    """Write a file so that a crash at any moment leaves the old one or the new one, never a part."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
