"""Reflection: what is derived from a person's memories, each derived record citing its sources.

Without an LLM, an **entity card** stands for each rare name a person's memories mention (in 2 to
`MAX_SOURCES` of them; a name in more is the people of every turn, as `retrieval.expand` reads
it): who or what, first and last seen, and the memories that mention it, each with its date and
the times it mentions resolved against when it was said. With an LLM, it writes **insights** —
lasting traits, goals, relationships — each naming the memories it rests on. From the tool-call
memory (`tool_call_record`), a **tool lesson** per tool the person's turns used more than once:
what the calls were for, how often they worked, why they failed, how long they took — counted, with
or without an LLM, so a lesson states only what the calls show.

The avatar's own knowledge across people (`memory_reflect(avatar=true)`, the owner's) is entity cards
drawn only from what people shared with everyone (visibility `everyone`, and avatar-scope memories),
each name mentioned by at least two people: nothing private crosses.

A derived record is a memory of its person (scope `user`, or `tool` for a lesson; `avatar` for the
avatar's own; `source` "reflection") with the ids of its sources in `derived_from` (keyword-indexed),
so it is recalled like any memory and found again when a source changes. It is as narrow as its
narrowest source (`narrowest`). `plan` says what a reflection writes: what is new is added, what
changed is updated (by `key`: the card of one name stays one memory), what is no longer derived is
removed.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from mcp_servers.core.llm import LLM
from mcp_servers.core.store import Hit

from . import visibility

DERIVED = "reflection"  # the `source` of a derived memory
CARD, INSIGHT, LESSON = "entity_card", "insight", "tool_lesson"
MIN_MENTIONS = 2  # a name mentioned once has nothing to gather
MAX_SOURCES = 20  # a name in more memories than this is too common for a card
QUOTE_CHARS = 200
LLM_MEMORIES = 200  # the most recent memories an LLM reflects on
MAX_INSIGHTS = 12
AVATAR = "avatar:"  # the key prefix of the avatar's own records (scope `avatar`, drawn from several people)
LESSON_ITEMS = 3  # tasks (and failures) a lesson names, the most recent first


@dataclass(frozen=True)
class Derived:
    """One derived record: what it is about (`key`), its text, and the memories it rests on."""

    key: str  # "entity:<name>" or "insight:<digest of its text>"
    kind: str
    text: str
    sources: tuple[str, ...]  # sorted memory ids
    occurred_at: datetime  # its latest source's time: a card reads as of its last mention
    tool: str | None = None  # a lesson's tool (it is then a `tool`-scope memory, found by tool_experience_search)
    worked: tuple[int, int] = (0, 0)  # a lesson's calls that worked, of how many


def narrowest(payloads: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Who may hear what is derived from these memories: any private source makes it private; else
    any `present` source makes it `present`, heard by those who heard every source; else everyone."""
    shown = [visibility.of(p) for p in payloads]
    heard = set.intersection(*(set(p.get("heard_by") or ()) for p in payloads)) if payloads else set()
    if "private" in shown or ("present" in shown and not heard):
        return {"visibility": "private", "heard_by": []}
    return {"visibility": "present" if "present" in shown else "everyone", "heard_by": sorted(heard)}


def _when(p: Mapping[str, Any]) -> datetime:
    return datetime.fromisoformat(p["occurred_at"])


def _day(d: datetime) -> str:
    return f"{d.day} {d:%B %Y}"


def _span(a: float, b: float, zone: Any) -> str:
    """A mentioned span in words: a day, a month, or its first and last day."""
    start, last = datetime.fromtimestamp(a, zone), datetime.fromtimestamp(b - 1, zone)
    if start.date() == last.date():
        return _day(start)
    if start.day == 1 and (last + timedelta(days=1)).day == 1 and (start.year, start.month) == (last.year, last.month):
        return f"{start:%B %Y}"
    return f"{_day(start)} to {_day(last)}"


def _name(key: str, contents: Sequence[str]) -> str:
    """The name as it was written (keys are lower case)."""
    pattern = re.compile(r"\b" + r"\s+".join(map(re.escape, key.split())) + r"\b", re.IGNORECASE)
    for text in contents:
        if m := pattern.search(text):
            return " ".join(m.group(0).split())
    return key.title()


def card(key: str, hits: Sequence[Hit], across: bool = False) -> Derived | None:
    """The card of the name `key` from the memories that mention it (None: too few or too many); `across`:
    the avatar's card from what several people shared with everyone (None: fewer than two people)."""
    people = {h.payload.get("user_id") or "" for h in hits}
    if not MIN_MENTIONS <= len(hits) <= MAX_SOURCES or (across and len(people) < 2):
        return None
    ordered = sorted(hits, key=lambda h: (h.payload.get("occurred_ts", 0.0), h.id))
    first, last = _when(ordered[0].payload), _when(ordered[-1].payload)
    by = f" by {len(people)} people" if across else ""
    lines = [f"About {_name(key, [h.payload['content'] for h in ordered])} (mentioned in {len(ordered)} memories{by}, "
             f"first on {_day(first)}, last on {_day(last)}):"]
    for h in ordered:
        said = _when(h.payload)
        quote = " ".join(h.payload["content"].split())
        quote = quote if len(quote) <= QUOTE_CHARS else quote[: QUOTE_CHARS - 1] + "…"
        times = [_span(a, b, said.tzinfo) for a, b in h.payload.get("mentions") or ()]
        lines.append(f"- {_day(said)}: {quote}" + (f" (that is: {'; '.join(times)})" if times else ""))
    return Derived(f"{AVATAR if across else ''}entity:{key}", CARD, "\n".join(lines),
                   tuple(sorted(h.id for h in ordered)), last)


def cards(hits: Sequence[Hit], across: bool = False) -> list[Derived]:
    """The cards of every rare name these memories (a person's own, or with `across` what anyone shared
    with everyone; none derived) mention."""
    by_name: dict[str, list[Hit]] = {}
    for h in hits:
        for e in h.payload.get("entities") or ():
            by_name.setdefault(e, []).append(h)
    found = (card(e, group, across) for e, group in sorted(by_name.items()))
    return [c for c in found if c is not None]


def lesson(tool: str, hits: Sequence[Hit]) -> Derived | None:
    """The lesson of one tool from the person's recorded calls of it (None: fewer than two); it rests
    on the most recent `MAX_SOURCES` calls."""
    calls = sorted(hits, key=lambda h: (h.payload.get("occurred_ts", 0.0), h.id))[-MAX_SOURCES:]
    if len(calls) < MIN_MENTIONS:
        return None
    md = [h.payload.get("metadata") or {} for h in calls]
    ok = [m for m in md if m.get("success")]
    waits = sorted(float(m["latency_ms"]) for m in md if isinstance(m.get("latency_ms"), int | float))
    first, last = _when(calls[0].payload), _when(calls[-1].payload)
    took = f"; median {waits[len(waits) // 2]:.0f} ms" if waits else ""
    lines = [f"Lesson on {tool} from {len(calls)} calls ({len(ok)} worked, {len(calls) - len(ok)} failed{took}), "
             f"{_day(first)} to {_day(last)}."]
    helped = _distinct(str(m.get("task") or "").strip() for m in reversed(ok))
    if helped:
        lines.append("Worked for: " + "; ".join(helped) + ".")
    failed = _distinct(f"{str(m.get('task') or 'a call').strip()} ({' '.join(str(m.get('outcome') or 'no reason').split())[:80]})"
                       for m in reversed(md) if not m.get("success"))
    if failed:
        lines.append("Failed for: " + "; ".join(failed) + ".")
    return Derived(f"tool:{tool}", LESSON, "\n".join(lines), tuple(sorted(h.id for h in calls)), last, tool,
                   (len(ok), len(calls)))


def lessons(hits: Sequence[Hit]) -> list[Derived]:
    """A lesson for every tool these recorded calls (a person's, none derived) used more than once."""
    by_tool: dict[str, list[Hit]] = {}
    for h in hits:
        by_tool.setdefault(str(h.payload.get("tool") or "?"), []).append(h)
    found = (lesson(t, group) for t, group in sorted(by_tool.items()))
    return [x for x in found if x is not None]


def _distinct(texts: Iterable[str]) -> list[str]:
    """The first `LESSON_ITEMS` different non-empty texts, in order."""
    out: list[str] = []
    for t in texts:
        if t and t.lower() not in (o.lower() for o in out):
            out.append(t[:120])
        if len(out) == LESSON_ITEMS:
            break
    return out


REFLECT_PROMPT = """You reflect on what a person told an assistant, to help it know them over time.
From the numbered memories, write what lasts: the person's traits, goals, preferences and
relationships (who the people and things they mention are to them). One sentence each, in the
third person, only what the memories support; at most {most}. For each, give the numbers of
the memories it rests on. Answer in JSON only: {{"insights": [{{"text": "...", "sources": [1, 4]}}]}}"""


async def insights(llm: LLM, hits: Sequence[Hit]) -> list[Derived]:
    """Insights an LLM writes from the most recent memories; one citing no memory given is dropped.
    Raises ValueError when the answer is not the JSON asked for."""
    recent = sorted(hits, key=lambda h: h.payload.get("occurred_ts", 0.0))[-LLM_MEMORIES:]
    numbered = "\n".join(f"[{n}] ({h.payload.get('occurred_at', '')[:10]}) {h.payload['content'][:300]}"
                         for n, h in enumerate(recent, 1))
    answer = await llm.complete_json(REFLECT_PROMPT.format(most=MAX_INSIGHTS), f"Memories:\n{numbered}")
    items = answer.get("insights") if isinstance(answer, dict) else None
    if not isinstance(items, list):
        raise ValueError(f"the LLM answered without an 'insights' list: {json.dumps(answer)[:200]}")
    out: dict[str, Derived] = {}
    for entry in items[:MAX_INSIGHTS]:
        if not isinstance(entry, dict) or not str(entry.get("text", "")).strip():
            continue
        text = " ".join(str(entry["text"]).split())
        cited = [recent[n - 1] for n in {int(s) for s in entry.get("sources") or () if str(s).isdigit()}
                 if 1 <= n <= len(recent)]
        if not cited:
            continue
        key = "insight:" + hashlib.sha256(text.lower().encode()).hexdigest()[:16]
        out[key] = Derived(key, INSIGHT, text, tuple(sorted(h.id for h in cited)), max(_when(h.payload) for h in cited))
    return list(out.values())


@dataclass
class Plan:
    """What one reflection writes: new records, (stored record, its new version) pairs, records to remove."""

    add: list[Derived]
    update: list[tuple[Hit, Derived]]
    remove: list[Hit]
    unchanged: list[Hit]


def plan(stored: Sequence[Hit], wanted: Sequence[Derived], sources: Mapping[str, Mapping[str, Any]]) -> Plan:
    """Compare the derived records stored with those derived now (`sources`: payload by memory id)."""
    by_key = {key_of(h): h for h in stored}
    out = Plan([], [], [], [])
    for d in wanted:
        old = by_key.pop(d.key, None)
        if old is None:
            out.add.append(d)
        elif not _same(old, d, sources):
            out.update.append((old, d))
        else:
            out.unchanged.append(old)
    out.remove = list(by_key.values())
    return out


def _same(old: Hit, d: Derived, sources: Mapping[str, Mapping[str, Any]]) -> bool:
    p = old.payload
    return p["content"] == d.text and all(p.get(k) == v for k, v in fields(d, sources).items())


def key_of(hit: Hit) -> str:
    return str(((hit.payload.get("metadata") or {}).get("derived") or {}).get("key", hit.id))


def fields(d: Derived, sources: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The payload fields a derived record gets from its sources: who may hear it, what it rests on; the
    avatar's own records also name whose memories they quote, so that erasing a person erases them."""
    out = {**narrowest([sources[i] for i in d.sources]), "derived_from": list(d.sources)}
    if d.key.startswith(AVATAR):
        out["cites_users"] = sorted({sources[i].get("user_id") or "" for i in d.sources} - {""})
    return out


def metadata(d: Derived) -> dict[str, Any]:
    """A derived record's metadata: what it is; a lesson also names its tool, as recorded calls do, and
    whether its calls mostly worked."""
    if d.tool is None:
        return {"derived": {"kind": d.kind, "key": d.key}}
    return {"derived": {"kind": d.kind, "key": d.key}, "tool": d.tool, "success": 2 * d.worked[0] >= d.worked[1]}
