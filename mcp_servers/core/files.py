"""Files named in tool arguments: read only under `ALPHAAVATAR_ALLOWED_ROOTS`, bounded in bytes."""

from __future__ import annotations

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
