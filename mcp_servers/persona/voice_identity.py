"""Voice identity: enrol voiceprints, identify and verify a speaker, undo adaptation, and say who
spoke when in a recording of several voices."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import numpy as np

from mcp_servers.core.auth import Principal
from mcp_servers.core.errors import UserError
from mcp_servers.core.params import Progress

from . import audio, segment
from .context import MAX_CLIPS, PersonaContext
from .decisions import Thresholds, decide
from .media import load_bytes
from .models import (
    ResetResult,
    Segment,
    SegmentResult,
    SegmentSpeaker,
    SpeakerEnrollResult,
    VerifyResult,
    VoiceMatch,
)
from .prints import ADAPTED, MAX_SAMPLES, Prints
from .voice import WORKER, VoiceModel

PROVISIONAL_MIN_SPEECH = 1.5  # seconds: a provisional user starts from a clip at least this long
ADAPT_MIN_SPEECH = 1.5
ADAPT_ABOVE = 0.03  # adapt only from matches this far above the 'known' threshold


@dataclass(frozen=True)
class Heard:
    """One utterance, embedded by the voice model in use."""

    model: VoiceModel
    prints: Prints
    vector: np.ndarray
    seconds: float  # of speech


class VoiceIdentity:
    def __init__(self, ctx: PersonaContext):
        self.ctx = ctx

    def _clip(self, value: str) -> audio.Clip:
        config = self.ctx.config
        data = load_bytes(value, "audio", self.ctx.settings, config.max_audio_bytes)
        return audio.load(data, config.max_audio_seconds, config.min_speech_seconds)

    def _embed_clip(self, model: VoiceModel, value: str) -> tuple[audio.Clip, np.ndarray]:
        clip = self._clip(value)
        return clip, model.embed(clip.speech)

    def thresholds(self, model: VoiceModel, seconds: float) -> Thresholds:
        return model.curve.shifted(self.ctx.config.voice_threshold).at(seconds)

    async def hear(self, value: str) -> Heard:
        model, prints = await self.ctx.voice_side()
        clip, vec = await WORKER.run(self._embed_clip, model, value)
        return Heard(model, prints, vec, clip.speech_seconds)

    async def enroll(self, principal: Principal, user_id: str, clips: list[str], progress: Progress) -> SpeakerEnrollResult:
        user_id = await self.ctx.scoped(principal, user_id)
        if not clips or len(clips) > MAX_CLIPS:
            raise UserError(f"Send between 1 and {MAX_CLIPS} audio clips.")
        await self.ctx.user(user_id)
        model, prints = await self.ctx.voice_side()
        vectors, seconds = [], []
        for i, value in enumerate(clips):
            try:
                clip, vec = await WORKER.run(self._embed_clip, model, value)
            except UserError as exc:
                raise UserError(f"Clip {i + 1} of {len(clips)}: {exc} Nothing was enrolled.") from None
            vectors.append(vec)
            seconds.append(round(clip.speech_seconds, 2))
            await progress(i + 1, len(clips), f"embedded clip {i + 1} of {len(clips)}")
        async with self.ctx.lock:
            await self.ctx.user(user_id)
            if await prints.count(user_id) + len(vectors) > MAX_SAMPLES:
                raise UserError(f"A user holds at most {MAX_SAMPLES} voice samples.")
            await prints.add(user_id, vectors, "enroll", [{"seconds": s} for s in seconds])
            counts = await prints.counts(user_id)
        return SpeakerEnrollResult(user_id=user_id, added=len(vectors), speech_seconds=seconds, voice_samples=counts,
                                   model=model.name)

    async def identify(self, principal: Principal, value: str, *, create_if_unknown: bool, adapt: bool) -> VoiceMatch:
        return await self.match(principal, await self.hear(value), create_if_unknown=create_if_unknown, adapt=adapt)

    async def match(self, principal: Principal, heard: Heard, *, create_if_unknown: bool = False,
                    adapt: bool = False) -> VoiceMatch:
        """Who `heard` is; an unknown voice may get a provisional user, a confident match may adapt."""
        model, prints, vec, seconds = heard.model, heard.prints, heard.vector, heard.seconds
        ranked = (await prints.rank([vec], 5, principal.user_id))[0]
        d = decide(ranked, self.thresholds(model, seconds))
        created, adapted = None, False
        # a user-scoped token is one person: it matches only its own voice and creates nobody else
        if d.verdict == "unknown" and create_if_unknown and seconds >= PROVISIONAL_MIN_SPEECH and principal.user_id is None:
            async with self.ctx.lock:
                user = await self.ctx.new_user(f"Guest {uuid.uuid4().hex[:6]}", provisional=True, source="session")
                await prints.add(user["user_id"], [vec], "provisional", [{"seconds": round(seconds, 2)}])
            created = user["user_id"]
        elif (d.verdict == "known" and adapt and d.user_id and d.score is not None and seconds >= ADAPT_MIN_SPEECH
              and d.score >= d.thresholds.known + ADAPT_ABOVE and self.ctx.config.max_adapted > 0):
            async with self.ctx.lock:
                if await (await self.ctx.people()).get(d.user_id) is not None:
                    await prints.add(d.user_id, [vec], ADAPTED, [{"seconds": round(seconds, 2)}])
                    adapted = True
        fields = await self.ctx.match_fields(d, ranked)
        return VoiceMatch(**fields, speech_seconds=round(seconds, 2), created_user_id=created, adapted=adapted,
                          model=model.name)

    async def verify(self, principal: Principal, user_id: str, value: str) -> VerifyResult:
        user_id = await self.ctx.scoped(principal, user_id)
        await self.ctx.user(user_id)
        model, prints = await self.ctx.voice_side()
        if not await prints.count(user_id):
            raise UserError(f"User {user_id} has no voiceprint yet: speaker_enroll them first.")
        clip, vec = await WORKER.run(self._embed_clip, model, value)
        claimed = (await prints.rank([vec], 1, user_id))[0]
        others = [c for c in (await prints.rank([vec], 2, principal.user_id))[0] if c[0] != user_id][:1]
        d = decide(claimed + others, self.thresholds(model, clip.speech_seconds))
        fields = await self.ctx.match_fields(d, sorted(claimed + others, key=lambda c: c[1], reverse=True))
        return VerifyResult(**fields, claimed_user_id=user_id, speech_seconds=round(clip.speech_seconds, 2),
                            model=model.name)

    async def reset(self, principal: Principal, user_id: str, *, only_adapted: bool) -> ResetResult:
        user_id = await self.ctx.scoped(principal, user_id)
        _, prints = await self.ctx.voice_side()
        async with self.ctx.lock:
            await self.ctx.user(user_id)
            removed = await prints.drop(user_id, ADAPTED if only_adapted else None)
            counts = await prints.counts(user_id)
        return ResetResult(user_id=user_id, removed=removed, voice_samples=counts)

    def _windows(self, model: VoiceModel, value: str) -> tuple[audio.Clip, np.ndarray, np.ndarray, int]:
        clip = self._clip(value)
        vectors, starts, length = model.windows(clip.wav, 0.25 if clip.seconds <= 20 else 0.5)
        return clip, vectors, starts, length

    async def segment(self, principal: Principal, value: str, *, create_if_unknown: bool) -> SegmentResult:
        model, prints = await self.ctx.voice_side()
        clip, vectors, starts, length = await WORKER.run(self._windows, model, value)
        usable = segment.speech_ratio(clip.keep, starts, length) >= segment.MIN_SPEECH_RATIO
        cuts = segment.change_points(vectors, starts, length, usable, clip.voiced)
        rate = audio.SAMPLE_RATE

        def speech_of(runs: list[tuple[float, float]]) -> np.ndarray:
            return np.concatenate([clip.wav[int(a * rate): int(b * rate)] for a, b in runs])

        def embed_all() -> tuple[list[list[tuple[float, float]]], list[np.ndarray]]:
            parts = segment.stretches(clip.keep, cuts)
            return segment.merge_alike(parts, [model.embed(speech_of(p)) for p in parts],
                                       lambda runs: model.embed(speech_of(runs)))

        parts, vec_list = await WORKER.run(embed_all)
        vecs = np.stack(vec_list) if vec_list else np.zeros((0, model.dim), dtype=np.float32)
        seconds = [sum(b - a for a, b in runs) for runs in parts]
        ranked = await prints.rank(list(vecs), 3, principal.user_id) if len(vecs) else []
        known = [d.user_id if (d := decide(r, self.thresholds(model, sec))).verdict == "known" else None
                 for r, sec in zip(ranked, seconds, strict=True)]
        labels = segment.label_stretches(vecs, known, seconds)
        turns = segment.join([segment.Turn(a, b, lab) for runs, lab in zip(parts, labels, strict=True)
                              for a, b in runs])
        order = list(dict.fromkeys(labels))
        speech = {lab: speech_of([(t.start, t.end) for t in turns if t.label == lab]) for lab in order}
        embedded = await WORKER.run(lambda: [model.embed(speech[lab]) for lab in order])
        matches: dict[str, VoiceMatch] = {}
        for lab, vec in zip(order, embedded, strict=True):
            heard = Heard(model, prints, vec, len(speech[lab]) / rate)
            matches[lab] = await self.match(principal, heard, create_if_unknown=create_if_unknown)
        same = segment.same_speakers(
            order,
            known={lab: m.user_id if m.decision == "known" and m.user_id else None for lab, m in matches.items()},
            closest={lab: m.candidates[0].user_id if m.decision == "uncertain" and m.candidates else None
                     for lab, m in matches.items()})
        turns, tags = segment.relabel(turns, same)
        segments = [Segment(start=round(t.start, 2), end=round(t.end, 2), speaker=tags[t.label],
                            user_id=matches[t.label].user_id or matches[t.label].created_user_id,
                            decision=matches[t.label].decision) for t in turns]
        speakers = [SegmentSpeaker(speaker=tag, **matches[lab].model_dump()) for lab, tag in tags.items()]
        return SegmentResult(segments=segments, speakers=speakers, duration=round(clip.seconds, 2))
