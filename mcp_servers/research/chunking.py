"""Split a document into overlapping passages of about `target` words along its own structure.

Units are paragraphs, then lines, then sentences, then word runs, each no longer than the
target; passages pack whole units and start every ~half target, so any stretch of text
appears whole in at least one passage.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

_SENTENCE = re.compile(r"(?<=[.!?])\s+")
# Ever finer splits a unit too long for the target goes through: paragraphs, then lines.
_SPLITS: tuple[Callable[[str], list[str]], ...] = (re.compile(r"\n\s*\n").split, str.splitlines)


def _word_runs(text: str, target: int) -> list[str]:
    """The text's sentences, each cut into runs of at most `target` words."""
    out: list[str] = []
    for sentence in _SENTENCE.split(text):
        words = sentence.split()
        out += [" ".join(words[i:i + target]) for i in range(0, len(words), target)]
    return out


def _units(text: str, target: int, splits: Sequence[Callable[[str], list[str]]] = _SPLITS) -> list[str]:
    out: list[str] = []
    split, *finer = splits
    for piece in split(text):
        piece = piece.strip()
        if not piece:
            continue
        if len(piece.split()) <= target:
            out.append(piece)
        else:
            out += _units(piece, target, finer) if finer else _word_runs(piece, target)
    return out


def passages(text: str, target: int = 100, overlap: float = 0.5) -> list[str]:
    """Overlapping passages of at most ~`target` words (a lone longer unit is cut to `target`)."""
    units = _units(text, target)
    sizes = [len(u.split()) for u in units]
    out: list[str] = []
    start = 0
    while start < len(units):
        end, words = start, 0
        while end < len(units) and (words == 0 or words + sizes[end] <= target):
            words += sizes[end]
            end += 1
        out.append("\n".join(units[start:end]))
        if end >= len(units):
            break
        nxt, skipped = start, 0
        while nxt < end - 1 and skipped + sizes[nxt] <= target * (1 - overlap):
            skipped += sizes[nxt]
            nxt += 1
        start = max(nxt, start + 1)
    return out
