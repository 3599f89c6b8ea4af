"""Times a memory mentions, resolved against when it was said ("yesterday" said on 8 May = 7 May).

Rules, not a model: dateparser resolves the same phrases but takes tens of milliseconds a
sentence and reads pronouns as weekdays ("We" = Wednesday), too slow and too loose for every
write. Each mention becomes a span [start, end) in UTC epoch seconds, computed in the time zone
of `when` (the moment the memory occurred). Stored on the memory (`mentions`), they let a query
that names a day find what happened that day even when it was told later, and mark the memories
that can answer "when" questions (`retrieval.rerank`).
"""

from __future__ import annotations

import calendar
import re
from datetime import datetime, timedelta

_MONTHS = "january february march april may june july august september october november december".split()
_DAYS = "monday tuesday wednesday thursday friday saturday sunday".split()
DATE_WORDS = frozenset(_MONTHS + _DAYS + ["today", "tomorrow", "yesterday", "tonight"])
_NUM = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
        "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "a couple of": 2, "a few": 3, "few": 3, "couple of": 2}
_N = r"(\d{1,3}|a couple of|couple of|a few|few|an?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)"
_UNIT = r"(day|week|weekend|month|year)s?"
_MONTH = "|".join(_MONTHS + [m[:3] for m in _MONTHS if m != "may"] + ["sept"])
_WEEKDAY = "|".join(_DAYS)

_RULES = re.compile(
    rf"\b(?P<ago>{_N.replace('(', '(?P<n>', 1)}\s+{_UNIT.replace('(', '(?P<unit>', 1)}\s+ago)\b"
    rf"|\b(?P<within>in\s+{_N.replace('(', '(?P<n2>', 1)}\s+{_UNIT.replace('(', '(?P<unit2>', 1)})\b"
    rf"|\b(?P<rel>last|this|next|past|coming)\s+(?P<what>week(?:end)?|month|year|{_WEEKDAY})\b"
    rf"|\b(?P<word>yesterday|today|tonight|tomorrow)\b"
    rf"|\b(?P<date>(?:(?P<d1>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?)?(?P<month>{_MONTH})\.?"
    rf"(?:\s+(?P<d2>\d{{1,2}})(?:st|nd|rd|th)?\b)?(?:,?\s*(?P<year>(?:19|20)\d\d))?)\b"
    rf"|\b(?:on|by|until|till|before|after)\s+(?P<weekday>{_WEEKDAY})\b",
    re.IGNORECASE,
)
_FUTURE = re.compile(r"\b(?:will|shall|going to|gonna|plan(?:ning)? to|'ll|remind me|is on|are on|starts?)\b",
                     re.IGNORECASE)
Span = tuple[float, float]
MAX_MENTIONS = 8


def _day(d: datetime) -> datetime:
    return d.replace(hour=0, minute=0, second=0, microsecond=0)


def _span(start: datetime, end: datetime) -> Span:
    return start.timestamp(), end.timestamp()


def _shift(day: datetime, n: int, unit: str) -> tuple[datetime, datetime]:
    """The span `n` units from `day` (negative = back), as wide as the unit."""
    if unit == "day":
        start = day + timedelta(days=n)
        return start, start + timedelta(days=1)
    if unit in ("week", "weekend"):
        start = day + timedelta(weeks=n) - timedelta(days=day.weekday())
        if unit == "weekend":
            start += timedelta(days=5)
            return start, start + timedelta(days=2)
        return start, start + timedelta(weeks=1)
    if unit == "month":
        m = day.month - 1 + n
        start = day.replace(year=day.year + m // 12, month=m % 12 + 1, day=1)
        m += 1
        return start, start.replace(year=day.year + m // 12, month=m % 12 + 1)
    start = day.replace(year=day.year + n, month=1, day=1)
    return start, start.replace(year=start.year + 1)


def mentions(text: str, when: datetime) -> list[Span]:
    """The time spans `text` mentions, resolved against `when` (aware), earliest mention first."""
    today = _day(when)
    ahead = 0 if _FUTURE.search(text) else -1  # "on Friday": the coming one in a plan, else the last
    out: list[Span] = []
    for m in _RULES.finditer(text):
        span = _resolve(m, today, ahead)
        if span is not None and span not in out:
            out.append(span)
            if len(out) == MAX_MENTIONS:
                break
    return out


def _resolve(m: re.Match[str], today: datetime, ahead: int) -> Span | None:
    g = {k: (v.lower() if isinstance(v, str) else v) for k, v in m.groupdict().items()}
    if g["ago"] or g["within"]:
        word, unit = (g["n"], g["unit"]) if g["ago"] else (g["n2"], g["unit2"])
        n = int(word) if word.isdigit() else _NUM[" ".join(word.split())]
        return _span(*_shift(today, -n if g["ago"] else n, unit))
    if g["rel"]:
        step = {"last": -1, "past": -1, "this": 0, "next": 1, "coming": 1}[g["rel"]]
        if g["what"] in _DAYS:
            return _weekday(today, _DAYS.index(g["what"]), step)
        return _span(*_shift(today, step, g["what"]))
    if g["word"]:
        n = {"yesterday": -1, "today": 0, "tonight": 0, "tomorrow": 1}[g["word"]]
        return _span(*_shift(today, n, "day"))
    if g["weekday"]:
        return _weekday(today, _DAYS.index(g["weekday"]), ahead)
    if g["date"]:
        month = next(n for n, name in enumerate(_MONTHS, 1) if name.startswith(g["month"][:3]))
        day = int(g["d1"] or g["d2"] or 0)
        if g["month"] == "may" and not (day or g["year"]):
            return None  # the verb "may"
        year = int(g["year"]) if g["year"] else today.year
        if day and day <= calendar.monthrange(year, month)[1]:
            start = today.replace(year=year, month=month, day=day)
            return _span(start, start + timedelta(days=1))
        if day:
            return None
        start = today.replace(year=year, month=month, day=1)
        m2 = month % 12 + 1
        return _span(start, start.replace(year=year + month // 12, month=m2))
    return None


def _weekday(today: datetime, weekday: int, step: int) -> Span:
    """'last Friday' (-1: the latest before today), 'on/this Friday' (0: the coming one, today
    included), 'next Friday' (+1: the Friday of next week)."""
    if step < 0:
        start = today - timedelta(days=(today.weekday() - weekday) % 7 or 7)
    elif step > 0:
        start = today + timedelta(days=7 - today.weekday() + weekday)
    else:
        start = today + timedelta(days=(weekday - today.weekday()) % 7)
    return _span(start, start + timedelta(days=1))
