"""What the room tells about the person we hear: who they say they are, their camera, whether sight
is on, their time zone."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable

from livekit import rtc

from .config import VisionConfig
from .floor import Floor
from .presence import KNOWN
from .speaker import Speaker
from .video import Cameras

USER_ATTRIBUTE = "alphaavatar.user_id"  # the persona user a participant is, when their token's identity is not it


def vouched(voice: Speaker | None, claimed: str) -> Speaker:
    """Who speaks on the stream of a participant who is `claimed`: their identity is a strong prior and
    their voice confirms it. Their own voice, sure or unsure, is them for sure; another person's
    sure voice, or none we could tell, is uncertain (attributed to them, trusted with nothing)."""
    if voice is not None and voice.user_id == claimed and voice.decision in (*KNOWN, "uncertain"):
        decision = "known" if voice.decision == "uncertain" else voice.decision
        return Speaker(claimed, voice.name, decision, voice.score, voice.provisional_voice, voice.resembles, voice.face)
    if voice is None:
        return Speaker(claimed, None, "uncertain")
    return Speaker(claimed, None, "uncertain", voice.score, resembles=(voice.user_id, *voice.resembles), face=voice.face)


def vouched_parts(voices: list[Speaker | None], claimed: str) -> list[Speaker | None]:
    """Who speaks each part of a two-voice turn on the stream of a participant who is `claimed`. The
    part in their own voice, sure or unsure, is them for sure; the other voices are other people at
    their microphone, as their voices say. When no part is in their voice, identity and voices
    disagree: each part is trusted with nothing (a sure voice is uncertain, none is theirs unsure)."""
    if any(v is not None and v.user_id == claimed and v.decision in (*KNOWN, "uncertain") for v in voices):
        return [vouched(v, claimed) if v is not None and v.user_id == claimed else v for v in voices]
    return [vouched(None, claimed) if v is None else
            Speaker(v.user_id, v.name, "uncertain", v.score, resembles=v.resembles, face=v.face) for v in voices]


class ParticipantView:
    """The participant whose microphone we hear (None outside a room), and their camera."""

    def __init__(self, vision: VisionConfig, participant: Callable[[], rtc.RemoteParticipant | None]):
        self.vision = vision
        self.camera = Cameras()
        self.sight = vision.enabled  # the per-session switch
        self._participant = participant
        self.floor: Floor | None = None  # several participants heard, one at a time (agent.floor)

    def identity(self) -> str | None:
        """The participant whose turn is being heard (None outside a room and without a floor)."""
        if self.floor is not None:
            return self.floor.holder
        participant = self._participant()
        return participant.identity if participant is not None else None

    def claimed(self, users: set[str]) -> str | None:
        """The persona user the participant we hear is (attribute `alphaavatar.user_id`, else their
        identity), when persona knows that user: the prior their voice is checked against."""
        participant = self._participant()
        user = (participant.attributes.get(USER_ATTRIBUTE) if participant is not None else None) or self.identity()
        return user if user in users else None

    def jpeg(self) -> bytes | None:
        """The latest frame of their camera (for identification by face)."""
        return self.camera.jpeg(self.identity())

    def sees(self) -> bool:
        """Sight is on: in the config, for this session (`sight`), and not switched off by the
        participant (attribute `alphaavatar.sight` = `off`)."""
        if not self.vision.enabled or not self.sight:
            return False
        participant = self._participant()
        return participant is None or participant.attributes.get("alphaavatar.sight", "on") != "off"

    def sight_line(self, frames: int) -> str | None:
        """What the context says about sight, so the avatar answers truthfully when asked."""
        if not self.vision.enabled:
            return None
        if not self.sees():
            return "off: you cannot see the user now; say so if asked what you see"
        if frames:
            return f"on: {frames} camera frames of this moment are attached to the user's message"
        return "on, but no camera frame arrived this turn: you cannot see anything now"

    def frames(self) -> list[str]:
        """A few frames of this moment for the LLM (none when sight is off)."""
        return self.camera.sample(self.identity(), self.vision.frames, self.vision.max_side) if self.sees() else []

    def timezone(self) -> str | None:
        """The participant's timezone: attribute `timezone`, or `timezone` in JSON metadata."""
        participant = self._participant()
        if participant is None:
            return None
        if tz := participant.attributes.get("timezone"):
            return tz
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            return json.loads(participant.metadata or "{}").get("timezone") or None
        return None
