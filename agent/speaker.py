"""Who a voice (and face) belongs to: one identification call and what its answer means."""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from typing import Any

from . import contracts as c
from .audio import wav_base64
from .config import TurnConfig
from .contracts import Identification, Match, VoiceMatch
from .mcp_sessions import McpHub, ToolFailed, ToolUnavailable

log = logging.getLogger(__name__)


@dataclass
class Speaker:
    user_id: str
    name: str | None = None
    decision: str = "known"  # known | provisional | uncertain | unknown | given
    score: float | None = None
    provisional_voice: str | None = None  # a provisional user whose voice this is, by a confident face match
    resembles: tuple[str, ...] = ()  # users the voice or face came close to
    face: str | None = None  # the user a confident face match in this turn's camera frame found


def face_settles(found: Identification) -> tuple[str, Match] | None:
    """(the provisional user whose voice this is, the face match) when both are confident: the voice
    is 'known' as a provisional user and the face 'known' as an enrolled one. Persona's fused verdict
    for that disagreement is 'uncertain', so the parts decide; an uncertain part never settles."""
    voice, face = found.voice, found.face
    if face is None or face.decision != "known" or face.provisional or not face.user_id:
        return None
    if voice is not None and voice.decision == "known" and voice.provisional and voice.user_id \
            and voice.user_id != face.user_id:
        return voice.user_id, face
    return None


def resembles(found: Identification) -> tuple[str, ...]:
    """The users the voice or face came close to (a candidate above the 'unknown' level)."""
    return tuple(u for match in (found.voice, found.face) if match is not None for u in match.resembles())


async def identify(hub: McpHub, cfg: TurnConfig, wav: bytes, image: bytes | None = None, create: bool = True,
                   current: Speaker | None = None, adapt: bool = True) -> Speaker | None:
    """The speaker of this audio (and face, when a video frame is given): a known user, or a
    provisional one the persona server creates for a new voice (later turns of it match it).
    Uncertain, or unknown from too little speech to start a new user: `current` goes on speaking.
    `adapt`: a confident match may refine the voiceprint (as `turn.adapt_voiceprints` allows)."""
    args: dict[str, Any] = {"audio": wav_base64(wav), "create_if_unknown": create}
    try:
        if image is not None and hub.has(c.IDENTIFY):
            args["image"] = base64.b64encode(image).decode("ascii")
            found = await hub.call_view(c.IDENTIFY, args, Identification)
        elif hub.has(c.SPEAKER_IDENTIFY):
            args["adapt"] = cfg.adapt_voiceprints and adapt
            found = Identification.of_voice(await hub.call_view(c.SPEAKER_IDENTIFY, args, VoiceMatch))
        else:
            return None
    except (ToolUnavailable, ToolFailed) as exc:
        log.warning("speaker identification failed: %s", exc)
        return None
    return speaker_of(found, current)


def speaker_of(found: Identification, current: Speaker | None = None) -> Speaker | None:
    """What an identification's answer means: a known or provisional user, the closest voice when
    uncertain, or `current` (who was speaking) when nobody can be named."""
    decision, score = found.decision, found.score
    alike = resembles(found)
    seen = found.face.user_id if found.face is not None and found.face.decision == "known" else None
    if created := found.created_user_id:
        log.info("new voice: provisional user %s", created)
        return Speaker(created, None, "provisional", score, resembles=alike, face=seen)
    if settles := face_settles(found):  # a provisional voice with an enrolled face: that user, to merge
        provisional_voice, face = settles
        return Speaker(str(face.user_id), face.name, "known", score, provisional_voice, alike, seen)
    if decision == "known" and found.user_id:
        provisional = bool(found.voice and found.voice.provisional)
        return Speaker(found.user_id, found.name, "provisional" if provisional else "known", score,
                       resembles=alike, face=seen)
    log.info("voice %s (score %s)", decision, score)
    if decision == "uncertain" and found.voice is not None and found.voice.candidates:
        best = max(found.voice.candidates, key=lambda c: c.score)  # the closest voice, never a confident attribution
        return Speaker(best.user_id, None, decision, score, resembles=alike, face=seen)
    if current is not None:
        return Speaker(current.user_id, current.name, decision, score, resembles=alike, face=seen)
    return None
