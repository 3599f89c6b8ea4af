"""Two voices in one turn: where the voice changes, and who speaks each part.

When speech stops, a turn long enough to hold two people (`turn.split_min_s` of speech) is to be
checked: once its words are in and its own identification and recall are done, its first and last
`EDGE_S` seconds of sound are identified, in the silence that ends the turn. So the check never
delays the turn's identification, recall or transcript. Only when the two ends are different
voices does persona's `speaker_segment` run on the whole turn. A single-voice turn so costs two
short identifications, mostly finished before the turn's hooks need them; segmenting (about a
second of CPU for a few seconds of audio) is paid by the turns that hold two voices.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import logging
import wave
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from livekit import rtc
from livekit.agents import APIError
from livekit.agents.stt import STT

from . import contracts as c
from .audio import ID_RATE, wav_base64
from .config import TurnConfig
from .contracts import Identification, Segment, Segments, VoiceMatch
from .mcp_sessions import McpHub, ToolFailed, ToolUnavailable
from .speaker import Speaker, speaker_of
from .speaking import SpeakerTracker

log = logging.getLogger(__name__)

EDGE_S = 2.0  # the first and the last seconds of sound in a turn, whose voices are compared
LOUD = 0.1  # of the turn's loudest sound: quieter 20 ms frames are the pauses around speech
EDGE_MIN_SPEECH_S = 1.0  # an edge with less speech than this is close to nobody by lack of speech
MIN_PART_S = 0.8  # a stretch of one voice shorter than this (a breath, a last syllable) joins a neighbour
SEGMENT_LIMIT_S = 10.0  # segmenting takes about a second; a stuck server leaves the turn whole


@dataclass
class Part:
    """One voice's stretch of a turn: seconds in the turn's audio, its speaker, its samples."""

    start: float
    end: float
    speaker: Speaker | None
    samples: np.ndarray  # int16, ID_RATE

    def frame(self) -> rtc.AudioFrame:
        return rtc.AudioFrame(self.samples.tobytes(), ID_RATE, 1, len(self.samples))


def samples_of(wav: bytes) -> np.ndarray:
    """The int16 samples of a mono 16-bit WAV (the turn's audio, as `TurnAudio` encodes it)."""
    with wave.open(io.BytesIO(wav), "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)


def sound_span(samples: np.ndarray) -> tuple[int, int]:
    """The first and last sample of sound (the pre-roll and the silence that ended the turn left out)."""
    hop = ID_RATE // 50
    frames = samples[: len(samples) // hop * hop].astype(np.float32).reshape(-1, hop)
    rms = np.sqrt((frames ** 2).mean(axis=1)) if len(frames) else np.zeros(0)
    loud = np.flatnonzero(rms > LOUD * max(float(rms.max(initial=0.0)), 1.0))
    return (int(loud[0]) * hop, (int(loud[-1]) + 1) * hop) if len(loud) else (0, len(samples))


def two_voices(head: VoiceMatch, tail: VoiceMatch) -> bool:
    """Whether a turn's first and last seconds are two people: one known for sure and the other
    closest to someone else (known, or the best candidate of an uncertain match) or to nobody on
    enough speech to tell. Two unsure ends say too little to pay for segmenting (and for
    identifying the turn anew when it holds one voice). `speaker_segment` then decides."""
    def closest(m: VoiceMatch) -> str | None:
        if m.decision == "known":
            return m.user_id
        return m.candidates[0].user_id if m.decision == "uncertain" and m.candidates else None

    def nobody(m: VoiceMatch) -> bool:
        return m.decision == "unknown" and (m.speech_seconds or 0.0) >= EDGE_MIN_SPEECH_S

    if head.decision != "known" and tail.decision != "known":
        return False
    first, last = closest(head), closest(tail)
    if first is not None and last is not None:
        return first != last
    return nobody(tail) or nobody(head)


def parts_of(found: Segments, samples: np.ndarray) -> list[Part]:
    """The segments grouped into one part per change of voice (a stretch too short to be a part joins
    its neighbour); each part's audio runs from the middle of the pause before it to the middle of the
    pause after it, so no word is lost, and its start and end are those of its sound."""
    who = {s.speaker: speaker_of(Identification.of_voice(s)) for s in found.speakers}
    runs: list[tuple[str, list[Segment]]] = []
    for tag, group in itertools.groupby(found.segments, key=lambda s: s.speaker):
        segments = list(group)
        if runs and (runs[-1][0] == tag or segments[-1].end - segments[0].start < MIN_PART_S):
            runs[-1][1].extend(segments)
        elif runs and runs[-1][1][-1].end - runs[-1][1][0].start < MIN_PART_S:
            runs[-1] = (tag, runs[-1][1] + segments)
        else:
            runs.append((tag, segments))
    total = len(samples) / ID_RATE
    cuts = [0.0, *((a[-1].end + b[0].start) / 2 for (_, a), (_, b) in itertools.pairwise(runs)), total]
    parts = []
    for i, (tag, _) in enumerate(runs):
        audio = samples[int(cuts[i] * ID_RATE): int(cuts[i + 1] * ID_RATE)]
        first, last = sound_span(audio)
        parts.append(Part(cuts[i] + first / ID_RATE, cuts[i] + last / ID_RATE, who.get(tag), audio))
    return parts


class VoiceChange:
    """Whether the current turn holds two voices, and its parts when it does."""

    def __init__(self, hub: McpHub, cfg: TurnConfig, speakers: SpeakerTracker):
        self.hub, self.cfg, self.speakers = hub, cfg, speakers
        self._armed: list[bytes] | None = None  # the turn's first and last seconds of sound, to identify
        self._edges: asyncio.Task[list[VoiceMatch | None]] | None = None

    def enabled(self) -> bool:
        return self.cfg.split_min_s > 0 and self.hub.has(c.SPEAKER_SEGMENT) and self.hub.has(c.SPEAKER_IDENTIFY)

    def listen(self, wav: bytes | None) -> bool:
        """Speech stopped: a turn with sound long enough for two voices is to be checked (`start`);
        returns whether it is."""
        self.drop()
        if wav is None or not self.enabled():
            return False
        samples = samples_of(wav)
        first, last = sound_span(samples)
        if last - first < self.cfg.split_min_s * ID_RATE:
            return False
        edges = (samples[first: first + int(EDGE_S * ID_RATE)], samples[last - int(EDGE_S * ID_RATE): last])
        self._armed = [rtc.AudioFrame(e.tobytes(), ID_RATE, 1, len(e)).to_wav_bytes() for e in edges]
        return True

    def start(self, after: Iterable[asyncio.Future[Any]] = ()) -> None:
        """The turn's words are in: its edges are identified once its own identification and `after`
        (the recall its words started) are done, so the check never competes with them, nor with
        transcribing the turn, for the persona server or the CPU."""
        if self._armed is not None and self._edges is None:
            self._edges = asyncio.create_task(self._check(self._armed, list(after)))

    async def _check(self, edges: list[bytes], after: list[asyncio.Future[Any]]) -> list[VoiceMatch | None]:
        first = [f for f in (self.speakers.pending(), *after) if f is not None]
        if first:
            await asyncio.wait(first)
        return list(await asyncio.gather(*(self._identify(e) for e in edges)))

    def armed(self) -> bool:
        """The turn is to be checked (its audio will be needed)."""
        return self._armed is not None

    def drop(self) -> None:
        """Speech went on (or the turn is over): the check belongs to no turn any more."""
        if self._edges is not None and not self._edges.done():
            self._edges.cancel()
        self._armed, self._edges = None, None

    async def differs(self, wait_s: float) -> bool:
        """Whether the turn's first and last seconds are two voices (False when not known within
        `wait_s`: the turn then stays whole)."""
        self.start()  # no words came after speech stopped: checked now
        edges, self._armed, self._edges = self._edges, None, None
        if edges is None:
            return False
        try:
            head, tail = await asyncio.wait_for(asyncio.shield(edges), wait_s)
        except TimeoutError:
            edges.cancel()
            log.warning("voice change check late (%.0f ms): the turn stays whole", wait_s * 1000)
            return False
        except asyncio.CancelledError:
            if not edges.cancelled():
                raise
            return False  # speech went on meanwhile: the turn is not over, the check belongs to no turn
        if head is None or tail is None or not two_voices(head, tail):
            return False
        log.info("two voices in one turn? first seconds %s (%s), last %s (%s)", head.user_id, head.decision,
                 tail.user_id, tail.decision)
        return True

    async def heard_parts(self, wav: bytes, stt: STT | None) -> list[tuple[Part, str]] | None:
        """The turn's parts with their words when it held two voices (`stt` on each part's audio); None
        when it held one, or a part could not be transcribed (the turn then stays whole)."""
        parts = await self.parts(wav)
        if parts is None or stt is None:
            return None
        try:
            heard = await asyncio.gather(*(stt.recognize(buffer=part.frame()) for part in parts))
        except APIError as exc:
            log.warning("a part of a two-voice turn could not be transcribed, the turn stays whole: %s", exc)
            return None
        texts = [(ev.alternatives[0].text if ev.alternatives else "").strip() for ev in heard]
        kept = [(part, text) for part, text in zip(parts, texts, strict=True) if text]
        return kept if len(kept) > 1 else None  # one voice with words: the turn is theirs, heard whole

    async def parts(self, wav: bytes) -> list[Part] | None:
        """The parts of a turn whose edges differ, one per voice (None: `speaker_segment` found one voice,
        or failed)."""
        try:
            found = await self.hub.call_view(c.SPEAKER_SEGMENT, {"audio": wav_base64(wav), "create_if_unknown": True},
                                             Segments, time_limit=SEGMENT_LIMIT_S)
        except (ToolUnavailable, ToolFailed) as exc:
            log.warning("speaker_segment failed, the turn stays whole: %s", exc)
            return None
        parts = parts_of(found, samples_of(wav))
        log.info("segmented: %s", ", ".join(f"{p.start:.2f}-{p.end:.2f} {p.speaker}" for p in parts))
        return parts if len(parts) > 1 else None

    async def _identify(self, wav: bytes) -> VoiceMatch | None:
        args = {"audio": wav_base64(wav), "create_if_unknown": False, "adapt": False}
        try:
            return await self.hub.call_view(c.SPEAKER_IDENTIFY, args, VoiceMatch)
        except (ToolUnavailable, ToolFailed) as exc:
            log.info("voice change check failed: %s", exc)
            return None
