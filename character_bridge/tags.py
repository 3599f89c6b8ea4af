"""Emotion tags in streamed LLM text: `[happy]` and AIRI's `<|ACT {"emotion":"happy"}|>`.

`TagParser.feed(chunk)` returns the text that is safe to speak now (tags removed) and the
emotions found, each at its character offset in the clean text — also when a tag is split
across chunks: a possible tag start is held back until it closes or cannot be a tag any more.
Unknown emotions map to the nearest canonical one (synonyms, then close spelling) or are
dropped with a log line.
"""

from __future__ import annotations

import difflib
import json
import logging
import re
from dataclasses import dataclass, field

from .protocol import EMOTIONS

log = logging.getLogger(__name__)

MAX_TAG = 200  # a held-back tag start longer than this is plain text after all
_BRACKET = re.compile(r"\[([A-Za-z][A-Za-z _-]{0,30})\]")
_ACT = re.compile(r"<\|ACT\s*:?\s*(\{.*?\})\s*\|>", re.DOTALL)

SYNONYMS: dict[str, str] = {
    "joy": "happy", "joyful": "happy", "glad": "happy", "excited": "happy", "smile": "happy",
    "smiling": "happy", "laugh": "happy", "laughing": "happy", "cheerful": "happy", "delighted": "happy",
    "happiness": "happy", "love": "happy", "pleased": "happy",
    "sadness": "sad", "sorrow": "sad", "unhappy": "sad", "upset": "sad", "crying": "sad", "cry": "sad",
    "disappointed": "sad", "depressed": "sad",
    "anger": "angry", "mad": "angry", "furious": "angry", "annoyed": "angry", "frustrated": "angry",
    "irritated": "angry",
    "thinking": "think", "thoughtful": "think", "pondering": "think", "hmm": "think", "considering": "think",
    "surprise": "surprised", "shocked": "surprised", "shock": "surprised", "amazed": "surprised",
    "astonished": "surprised", "wow": "surprised",
    "embarrassed": "awkward", "shy": "awkward", "nervous": "awkward", "sheepish": "awkward",
    "uncomfortable": "awkward",
    "confused": "question", "puzzled": "question", "unsure": "question", "doubt": "question",
    "questioning": "question",
    "interested": "curious", "intrigued": "curious", "wondering": "curious", "inquisitive": "curious",
    "calm": "neutral", "default": "neutral", "normal": "neutral", "relaxed": "neutral", "idle": "neutral",
}


def canonical_emotion(name: str) -> str | None:
    """The canonical emotion a tag name means, or None if it means none of them."""
    key = re.sub(r"[\s_-]+", "", name.strip().lower())
    if key in EMOTIONS:
        return key
    if key in SYNONYMS:
        return SYNONYMS[key]
    close = difflib.get_close_matches(key, [*EMOTIONS, *SYNONYMS], n=1, cutoff=0.8)
    if close:
        return close[0] if close[0] in EMOTIONS else SYNONYMS[close[0]]
    return None


@dataclass
class TagHit:
    emotion: str
    offset: int  # character offset in the clean text where the emotion starts
    raw: str
    intensity: float = 1.0


@dataclass
class Parsed:
    text: str
    tags: list[TagHit] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


class TagParser:
    """Stream parser: feed chunks as they arrive, `flush()` at the end of the stream."""

    def __init__(self) -> None:
        self._buf = ""
        self._emitted = 0  # length of clean text returned so far
        self.dropped: list[str] = []

    def feed(self, chunk: str) -> Parsed:
        self._buf += chunk
        return self._drain(final=False)

    def flush(self) -> Parsed:
        return self._drain(final=True)

    def _drain(self, final: bool) -> Parsed:
        buf, self._buf = self._buf, ""
        out: list[str] = []
        tags: list[TagHit] = []
        i = 0
        while i < len(buf):
            start = _next_tag_start(buf, i)
            if start < 0:
                out.append(buf[i:])
                break
            out.append(buf[i:start])
            match = _BRACKET.match(buf, start) if buf[start] == "[" else _ACT.match(buf, start)
            if match:
                self._hit(match, self._emitted + sum(map(len, out)), tags)
                i = match.end()
            elif not final and _could_become_tag(buf[start:]):
                self._buf = buf[start:]
                break
            else:
                out.append(buf[start])
                i = start + 1
        text = "".join(out)
        self._emitted += len(text)
        return Parsed(text, tags)

    def _hit(self, match: re.Match[str], offset: int, tags: list[TagHit]) -> None:
        raw = match.group(0)
        name, intensity = "", 1.0
        if raw.startswith("["):
            name = match.group(1)
        else:
            try:
                payload = json.loads(match.group(1))
            except ValueError:
                payload = None
            value = payload.get("emotion") if isinstance(payload, dict) else None
            if isinstance(value, dict):  # {"emotion": {"name": "happy", "intensity": 0.7}}
                intensity = _unit(value.get("intensity"))
                value = value.get("name")
            name = value if isinstance(value, str) else ""
        emotion = canonical_emotion(name) if name else None
        if emotion is None:
            self.dropped.append(raw)
            log.info("dropped an emotion tag with no canonical emotion", extra={"fields": {"tag": raw[:40]}})
            return
        tags.append(TagHit(emotion, offset, raw, intensity))


def _unit(value: object) -> float:
    return min(1.0, max(0.0, float(value))) if isinstance(value, int | float) else 1.0


def _next_tag_start(buf: str, i: int) -> int:
    a, b = buf.find("[", i), buf.find("<|", i)
    if b < 0 and buf.endswith("<") and len(buf) - 1 >= i:
        b = len(buf) - 1  # a lone '<' at the end may be the start of '<|ACT'
    starts = [s for s in (a, b) if s >= 0]
    return min(starts) if starts else -1


def _could_become_tag(rest: str) -> bool:
    """Whether more text could still turn `rest` (which starts with '[' or '<') into a tag."""
    if len(rest) > MAX_TAG:
        return False
    if rest[0] == "[":
        return re.fullmatch(r"\[[A-Za-z][A-Za-z _-]{0,30}", rest) is not None or rest == "["
    prefix = "<|ACT"
    if len(rest) <= len(prefix):
        return prefix.startswith(rest)
    return rest.startswith(prefix) and "|>" not in rest


def strip_tags(text: str) -> Parsed:
    """Parse a whole text at once."""
    parser = TagParser()
    first = parser.feed(text)
    last = parser.flush()
    return Parsed(first.text + last.text, first.tags + last.tags, parser.dropped)
