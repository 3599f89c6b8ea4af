"""What every benchmark does with its figures besides printing them: `--json PATH` keeps them,
and `png` draws them."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

Figures = TypeVar("Figures")


def save(figures: Any, path: str | Path | None) -> None:
    """Write the figures as JSON to `path` (its folder made if need be); nothing when no path was given."""
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(figures, indent=2))


def run_benchmark(parser: argparse.ArgumentParser, measure: Callable[[argparse.Namespace], Awaitable[Figures]],
                  show: Callable[[Figures], None]) -> None:
    """A benchmark's command line: its arguments and `--json`, then measure, print, keep the figures."""
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    figures = asyncio.run(measure(args))
    show(figures)
    save(figures, args.json)


@contextlib.contextmanager
def png(path: Path, size: tuple[float, float] = (6.5, 4)) -> Iterator[Any]:
    """One matplotlib axes (no display needed), saved to `path` as a PNG when the block ends."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size)
    yield ax
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
