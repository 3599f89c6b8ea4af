"""What every benchmark does with its figures besides printing them: `--json PATH` keeps them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def save(figures: Any, path: str | Path | None) -> None:
    """Write the figures as JSON to `path` (its folder made if need be); nothing when no path was given."""
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(figures, indent=2))
