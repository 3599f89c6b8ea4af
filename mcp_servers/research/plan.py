"""Planning sub-queries: with the LLM when one is configured, else a deterministic decomposition."""

from __future__ import annotations

import logging
import re

from mcp_servers.core.llm import LLM, llm_failed

from .calls import normalise

log = logging.getLogger(__name__)

_STOP = frozenset(
    "a an the of to in on at for from by with about into over after before between and or but nor so yet "
    "is are was were be been being am do does did has have had having can could should would will shall may "
    "might must i me my we our you your he him his she her it its they them their this that these those "
    "what which who whom whose when where why how there here not no yes as if than then also just very "
    "please tell me give show find explain describe any some".split()
)
# Angles a deep research adds to the question's key terms.
_FACETS = ("overview", "latest developments", "evidence and data", "criticism and limitations", "examples")


def keywords(question: str) -> str:
    words = re.findall(r"[\w'’-]+", question)
    return " ".join(w for w in words if w.lower() not in _STOP)


def decompose(question: str, n: int, deep: bool) -> list[str]:
    """The question, its separate parts, its key terms and (deep) facets of them; at most n, distinct."""
    cands = [question]
    parts = [p.strip(" ,") for p in re.split(r"[?;]|\b(?:versus|vs\.?|compared (?:to|with))\b", question)]
    parts = [p for p in parts if len(keywords(p).split()) >= 2]
    if len(parts) > 1:
        cands += parts
    key = keywords(question)
    if key:
        cands.append(key)
        if deep:
            cands += [f"{key} {facet}" for facet in _FACETS]
    out: list[str] = []
    seen: set[str] = set()
    for c in cands:
        if normalise(c) not in seen:
            seen.add(normalise(c))
            out.append(c.strip())
    return out[:n]


async def plan(question: str, n: int, deep: bool, llm: LLM | None) -> tuple[list[str], str | None]:
    """(sub-queries with the question first, a warning if the LLM planner failed)."""
    if llm is None or n <= 1:
        return decompose(question, n, deep), None
    system = (
        f"You plan research. Reply with a JSON object {{\"queries\": [...]}} holding up to {n - 1} short, "
        "distinct search queries that together cover what is needed to answer the user's question "
        "(different aspects, entities, or time frames). No commentary."
    )
    try:
        data = await llm.complete_json(system, question)
        queries = [str(q).strip()[:300] for q in data.get("queries", []) if str(q).strip()]
    except Exception as exc:
        log.warning("LLM planning failed; using the deterministic plan", extra={"fields": {"error": exc.__class__.__name__}})
        return decompose(question, n, deep), f"Planning failed: {llm_failed(exc)} A fixed plan was used."
    out = [question]
    seen = {normalise(question)}
    for q in queries:
        if normalise(q) not in seen:
            seen.add(normalise(q))
            out.append(q)
    return out[:n], None
