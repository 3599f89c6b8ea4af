"""Writing the answer: the LLM cites numbered sources; citations that name no source are removed."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from mcp_servers.core.llm import CONFIGURE, LLM

from .models import Source

log = logging.getLogger(__name__)

_CITE = re.compile(r"\[(\s*\d+(?:\s*(?:[,;]|[-–])\s*\d+)*\s*)\]")
EVIDENCE_NOTE = (
    f"No LLM is configured for this server ({CONFIGURE} to get a written answer), so this is an evidence "
    "bundle: the ranked sources and their best passages. "
    "Write the answer yourself from these passages and cite each claim with its source number as [n]."
)
ANSWER_NOTE = "Every [n] in the answer refers to sources[n-1]; citations to no source were removed."

SYSTEM = (
    "You answer a research question using ONLY the numbered sources given. Every sentence that states a "
    "fact must end with the numbers of the sources supporting it, in square brackets, like [1] or [2][3]. "
    "Never cite a number that is not in the list. If the sources do not answer the question, say so. "
    "Be concise: a few short paragraphs at most."
)


def _numbers(group: str) -> list[int]:
    out: list[int] = []
    for piece in re.split(r"\s*[,;]\s*", group.strip()):
        m = re.fullmatch(r"(\d+)\s*[-–]\s*(\d+)", piece)
        if m:
            lo, hi = int(m.group(1)), int(m.group(2))
            out += list(range(lo, hi + 1)) if 0 < hi - lo < 50 else [lo, hi]
        elif piece.isdigit():
            out.append(int(piece))
    return out


def validate_citations(text: str, n_sources: int) -> tuple[str, list[int], list[int]]:
    """(text with only valid citations, each written [n]; numbers cited; numbers removed)."""
    used: list[int] = []
    removed: list[int] = []

    def fix(m: re.Match[str]) -> str:
        keep = []
        for n in _numbers(m.group(1)):
            if 1 <= n <= n_sources:
                if n not in keep:
                    keep.append(n)
            else:
                removed.append(n)
        used.extend(n for n in keep if n not in used)
        return "".join(f"[{n}]" for n in keep)

    clean = _CITE.sub(fix, text)
    clean = re.sub(r"[ \t]+([.,;:!?])", r"\1", clean)
    clean = re.sub(r"[ \t]{2,}", " ", clean).strip()
    return clean, sorted(used), removed


def _context(sources: Sequence[Source], max_chars: int = 12000) -> str:
    blocks: list[str] = []
    size = 0
    for s in sources:
        where = s.url or f"corpus document {s.title}"
        body = "\n".join(p.text for p in s.passages)
        block = f"[{s.n}] {s.title} ({where})\n{body}"
        if size + len(block) > max_chars and blocks:
            break
        blocks.append(block)
        size += len(block)
    return "\n\n".join(blocks)


async def synthesize(llm: LLM, question: str, sources: Sequence[Source]) -> tuple[str, list[int], list[int]]:
    """The LLM's answer with validated citations: (answer, cited numbers, removed numbers)."""
    text = await llm.complete([
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"Question: {question}\n\nSources:\n{_context(sources)}"},
    ], temperature=0.2)
    answer, used, removed = validate_citations(text, len(sources))
    if removed:
        log.warning("removed citations that name no source",
                    extra={"fields": {"removed": removed, "sources": len(sources)}})
    return answer, used, removed
