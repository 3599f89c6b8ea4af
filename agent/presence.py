"""Who is present: voices heard lately, faces in view, room participants, each with how sure we
are and when they left.

Anyone not recognised is "someone" (`SOMEONE`): recall and memory use that literal for them, so
nobody's private memories are said in front of them. A voice that identification was unsure of
also counts as someone for a while: it may be a person we do not know.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .config import GroupConfig
from .speaker import Speaker

SOMEONE = "someone"
KNOWN = ("known", "provisional", "given")


@dataclass
class Person:
    key: str  # a user id, or `someone:<what we know of them>`
    user_id: str | None  # None: someone not recognised
    name: str | None = None
    decision: str = "unknown"
    confidence: float | None = None
    seen: dict[str, float] = field(default_factory=dict)  # source (voice, face, room) -> when, monotonic
    left_at: float | None = None

    @property
    def audience_id(self) -> str:
        return self.user_id or SOMEONE

    def label(self) -> str:
        if self.user_id is None:
            return "someone not recognised"
        return f"{self.name} (user id {self.user_id})" if self.name else f"user id {self.user_id}"


class Presence:
    def __init__(self, cfg: GroupConfig | None = None):
        self.cfg = cfg or GroupConfig()
        self._people: dict[str, Person] = {}
        self._rooms: dict[str, str] = {}  # room participant identity -> the user their voice or face showed

    def _person(self, key: str, user_id: str | None) -> Person:
        person = self._people.get(key)
        if person is None:
            person = self._people[key] = Person(key, user_id)
        person.left_at = None
        return person

    def heard(self, speaker: Speaker | None, at: float | None = None) -> None:
        """A voice spoke: the person it was attributed to, and someone unknown when we were unsure."""
        now = time.monotonic() if at is None else at
        if speaker is not None and speaker.decision in KNOWN:
            person = self._person(speaker.user_id, speaker.user_id)
            person.name, person.decision, person.confidence = speaker.name or person.name, speaker.decision, speaker.score
            person.seen["voice"] = now
        else:
            person = self._person(f"{SOMEONE}:voice", None)
            person.decision = speaker.decision if speaker is not None else "unknown"
            person.seen["voice"] = now

    def seen_face(self, user_id: str | None, name: str | None = None, confidence: float | None = None,
                  at: float | None = None) -> None:
        """A face in view (None: a face nobody knows)."""
        person = self._person(user_id or f"{SOMEONE}:face", user_id)
        person.name = name or person.name
        person.confidence = confidence if confidence is not None else person.confidence
        person.seen["face"] = time.monotonic() if at is None else at

    def joined(self, identity: str, user_id: str | None = None, name: str | None = None) -> None:
        """A room participant: someone until their voice or face (or a verified token) says who."""
        person = self._person(user_id or f"{SOMEONE}:room:{identity}", user_id)
        person.name = name or person.name
        person.seen["room"] = time.monotonic()

    def link(self, identity: str, user_id: str) -> None:
        """A room participant's voice (or face) said who they are: they are that person while here."""
        room = self._people.pop(f"{SOMEONE}:room:{identity}", None)
        if room is not None:
            self._rooms[identity] = user_id
            self._person(user_id, user_id).seen["room"] = room.seen["room"]

    def left_room(self, identity: str) -> None:
        """A participant disconnected."""
        self.left(self._rooms.pop(identity, f"{SOMEONE}:room:{identity}"))

    def left(self, key: str) -> None:
        """They left (their user id, or `someone:...`): no longer present, whatever was heard."""
        if (person := self._people.get(key)) is not None:
            person.left_at = time.monotonic()

    def _here(self, person: Person, now: float) -> bool:
        if person.left_at is not None:
            return False
        windows = {"voice": self.cfg.unknown_present_s if person.user_id is None else self.cfg.voice_present_s,
                   "face": self.cfg.face_present_s}
        return any(source == "room" or now - at <= windows[source] for source, at in person.seen.items())

    def people(self) -> list[Person]:
        """Who is present now, the most recently heard or seen first."""
        now = time.monotonic()
        here = [p for p in self._people.values() if self._here(p, now)]
        return sorted(here, key=lambda p: -max(p.seen.values()))

    def gone(self) -> list[Person]:
        """Who was here and left (or went quiet), with when."""
        now = time.monotonic()
        return [p for p in self._people.values() if not self._here(p, now)]

    def audience(self, speaker: str | None = None) -> list[str]:
        """The user ids of everyone present (the speaker first), `someone` once for anyone unknown:
        the `present` argument of recall and memory writes."""
        ids = [speaker] if speaker else []
        for person in self.people():
            if person.audience_id not in ids:
                ids.append(person.audience_id)
        return ids

    def present(self) -> list[Speaker]:
        """The recognised people present, the most recent first (for the context block)."""
        return [Speaker(p.user_id, p.name, p.decision, p.confidence) for p in self.people() if p.user_id]

    def renamed(self, user_id: str, name: str) -> None:
        if (person := self._people.get(user_id)) is not None:
            person.name, person.decision = name, "known"

    def merged(self, provisional: str, known: str) -> None:
        old = self._people.pop(provisional, None)
        if old is not None and known not in self._people:
            self._people[known] = Person(known, known, old.name, "known", old.confidence, old.seen)

    def describe(self) -> str:
        """One line per person, for logs and the replay's output."""
        return "; ".join(f"{p.label()} ({p.decision}, {'/'.join(sorted(p.seen))})" for p in self.people()) or "nobody"
