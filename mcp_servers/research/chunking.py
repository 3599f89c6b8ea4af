"""Split a document into overlapping passages of about `target` words along its own structure.

Units are paragraphs, then lines, then sentences, then word runs, each no longer than the
target; passages pack whole units and start every ~half target, so any stretch of text
appears whole in at least one passage.
"""

from __future__ import annotations

import re

_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def _units(text: str, target: int) -> list[str]:
    out: list[str] = []
    for para in re.split(r"\n\s*\n", text):
        para = para.strip()
        if not para:
            continue
        if len(para.split()) <= target:
            out.append(para)
            continue
        for line in para.splitlines():
            line = line.strip()
            if not line:
                continue
            if len(line.split()) <= target:
                out.append(line)
                continue
            for sentence in _SENTENCE.split(line):
                words = sentence.split()
                out += [" ".join(words[i:i + target]) for i in range(0, len(words), target)]
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
