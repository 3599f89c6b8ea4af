"""The persona service, one per process: models load once (in the background from startup), stores
open once, writes are serialised by one lock and validated before anything is written."""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

import anyio
import numpy as np

from mcp_servers.core.auth import Principal, scope_user
from mcp_servers.core.embeddings import get_embedder
from mcp_servers.core.errors import Forbidden, NotFound, UserError
from mcp_servers.core.health import load_state
from mcp_servers.core.llm import get_llm
from mcp_servers.core.settings import Settings
from mcp_servers.core.store import CollectionSpec, VectorStore, Where, open_store

from . import audio, extract, faces, images, profile, segment, voice
from .config import PersonaSettings, models_dir
from .decisions import Decision, Thresholds, decide, fuse
from .faces import Face, FaceModel
from .media import load_bytes
from .people import People, people_spec, well_formed
from .prints import ADAPTED, MAX_SAMPLES, Prints, prints_spec
from .schemas import (
    Box,
    Candidate,
    Change,
    ExtractResult,
    FaceEnrollResult,
    FaceMatch,
    FaceResult,
    ForgetResult,
    HistoryResult,
    IdentifyResult,
    MergeResult,
    ProfileUpdateResult,
    Proposal,
    ResetResult,
    SearchHit,
    SearchResult,
    Segment,
    SegmentResult,
    SegmentSpeaker,
    SpeakerEnrollResult,
    User,
    UserList,
    VerifyResult,
    VoiceMatch,
)
from .voice import VoiceModel

log = logging.getLogger(__name__)

SERVER = "persona"
PROVISIONAL_MIN_SPEECH = 1.5  # seconds: a provisional user starts from a clip at least this long
ADAPT_MIN_SPEECH = 1.5
ADAPT_ABOVE = 0.03  # adapt only from matches this far above the 'known' threshold
MAX_CLIPS = 50
Progress = Callable[[int, int, str], Awaitable[None]]
M = TypeVar("M", VoiceModel, FaceModel)


def _safe(name: str) -> str:
    return re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-")[:60]


def _change(row: dict[str, Any]) -> Change:
    return Change.model_validate({k: row.get(k) for k in Change.model_fields})


class Persona:
    def __init__(self, settings: Settings, config: PersonaSettings | None = None):
        self.settings = settings
        self.config = config or PersonaSettings()
        self.dir = settings.data_dir(SERVER)
        self.embedder = get_embedder(settings)
        self.llm = get_llm(settings)
        self._lock = asyncio.Lock()
        self._voice_model: Future[VoiceModel] | None = None
        self._face_model: Future[FaceModel] | None = None
        self._people: People | None = None
        self._prints: dict[str, Prints] = {}  # by modality: 'voice', 'face'
        self._open_lock = asyncio.Lock()

    # -- life cycle ---------------------------------------------------------------------------

    def warm(self) -> None:
        """Start loading both models on their worker threads (errors surface at first use)."""
        if self._voice_model is None:
            self._voice_model = voice._worker.submit(voice.load_voice_model, self.config.voice_model,
                                                     models_dir(self.settings.home))
        if self._face_model is None:
            self._face_model = faces._worker.submit(faces.load_face_model, self.config.face_model,
                                                    self.config.insightface_root)

    async def start(self) -> None:
        self.warm()
        await self.people()

    async def close(self) -> None:
        for prints in self._prints.values():
            await anyio.to_thread.run_sync(prints.store.close)
        if self._people is not None:
            await anyio.to_thread.run_sync(self._people.store.close)
        self._prints, self._people = {}, None

    def health(self) -> dict[str, object]:
        return {"voice_model": load_state(self._voice_model), "face_model": load_state(self._face_model)}

    async def _open(self, spec: CollectionSpec) -> VectorStore:
        return await anyio.to_thread.run_sync(open_store, self.settings, SERVER, spec)

    async def people(self) -> People:
        async with self._open_lock:
            if self._people is None:
                self._people = People(await self._open(people_spec(self.embedder.dim)), self.embedder)
        return self._people

    async def _side(self, modality: str, loading: Future[M] | None, centroids: bool,
                    max_adapted: int) -> tuple[M, Prints]:
        """One modality's model (once loaded) and its samples, in a collection named after the model."""
        assert loading is not None
        model = await asyncio.wrap_future(loading)
        async with self._open_lock:
            if modality not in self._prints:
                store = await self._open(prints_spec(modality, _safe(model.name), model.dim))
                self._prints[modality] = Prints(store, centroids=centroids, max_adapted=max_adapted)
        return model, self._prints[modality]

    async def voice_side(self) -> tuple[VoiceModel, Prints]:
        self.warm()
        return await self._side("voice", self._voice_model, True, self.config.max_adapted)

    async def face_side(self) -> tuple[FaceModel, Prints]:
        self.warm()
        return await self._side("face", self._face_model, False, 0)

    # -- users --------------------------------------------------------------------------------

    async def user(self, user_id: str) -> dict[str, Any]:
        found = (await self.people()).get(user_id)  # None for a malformed id as well
        if found is None:
            raise NotFound(f"No user {user_id!r}: user_list shows the users there are.")
        return found

    async def scoped(self, principal: Principal, user_id: str) -> str:
        """The user a call may act on. A user-scoped token is that user on every server: its persona
        user exists from the token's first use, so memory's 'alice' is persona's 'alice'."""
        user_id = scope_user(principal, user_id) or user_id
        if principal.user_id is not None and (await self.people()).get(user_id) is None:
            async with self._lock:
                if (await self.people()).get(user_id) is None:
                    await self._new_user(user_id, False, "manual", user_id)
        return user_id

    @staticmethod
    def unscoped(principal: Principal, what: str) -> None:
        if principal.user_id is not None:
            raise Forbidden(f"A token scoped to one user cannot {what}.")

    async def _new_user(self, name: str, provisional: bool, source: profile.Source,
                        user_id: str | None = None) -> dict[str, Any]:
        people = await self.people()
        user_id = user_id or str(uuid.uuid4())
        at = profile.now()
        user: dict[str, Any] = {"kind": "user", "user_id": user_id, "name": name, "provisional": provisional,
                                "created_at": at, "updated_at": at, "facts": []}
        change = profile.apply(user["facts"], profile.check(profile.Patch(op="set", field="identity.name", value=name)),
                               source, None)
        await people.commit(user, [{**(change or {}), "op": "create"}])
        return user

    async def create_user(self, principal: Principal, name: str, provisional: bool, user_id: str | None = None) -> User:
        """A new user; `user_id` chooses the id (the one the caller's other servers use). A user-scoped
        token creates (or names) only its own user."""
        if not name.strip():
            raise UserError("A user needs a name.")
        user_id = scope_user(principal, user_id)
        if user_id is not None and not well_formed(user_id):
            raise UserError("A user id is 1 to 64 printable characters with no spaces around it.")
        async with self._lock:
            if user_id is not None and (await self.people()).get(user_id) is not None:
                raise UserError(f"User {user_id!r} exists already: user_get shows it, user_rename renames it.")
            user = await self._new_user(" ".join(name.split()), provisional, "manual", user_id)
        return await self.describe(user)

    async def describe(self, user: dict[str, Any]) -> User:
        _, vp = await self.voice_side()
        _, fp = await self.face_side()
        uid = user["user_id"]
        return User(user_id=uid, name=user["name"], provisional=user.get("provisional", False),
                    created_at=user["created_at"], updated_at=user["updated_at"], voice_samples=vp.counts(uid),
                    face_samples=fp.count(uid), facts=len(user.get("facts", [])))

    async def list_users(self, principal: Principal, limit: int, cursor: str | None,
                         provisional: bool | None) -> UserList:
        people = await self.people()
        hits, nxt = people.page(limit, cursor, provisional, principal.user_id)
        users = [await self.describe(h.payload) for h in hits]
        total = len(users) if principal.user_id else people.count(provisional)
        return UserList(users=users, next_cursor=nxt, total=total)

    async def rename(self, principal: Principal, user_id: str, name: str) -> User:
        user_id = await self.scoped(principal, user_id)
        patch = self._checked([profile.Patch(op="set", field="identity.name", value=name)])[0]
        async with self._lock:
            user = await self.user(user_id)
            old = user["name"]
            change = profile.apply(user["facts"], patch, "manual", "user_rename")
            user.update(name=patch.value, provisional=False, updated_at=profile.now())
            await (await self.people()).commit(user, [{**(change or {}), "op": "rename", "old": old, "new": patch.value}])
        return await self.describe(user)

    async def merge(self, principal: Principal, user_id: str, into_user_id: str) -> MergeResult:
        self.unscoped(principal, "merge users")
        if user_id == into_user_id:
            raise UserError("A user cannot be merged into themselves.")
        _, vp = await self.voice_side()
        _, fp = await self.face_side()
        async with self._lock:
            source, target = await self.user(user_id), await self.user(into_user_id)
            people = await self.people()
            added = []
            for fact in source["facts"]:
                same = [f for f in target["facts"] if f["field"] == fact["field"]]
                if fact["field"] in profile.LISTS:
                    if any(profile.key(f["value"]) == profile.key(fact["value"]) for f in same):
                        continue
                elif same:
                    continue  # a one-value field: the remaining user's value wins
                target["facts"].append(dict(fact))
                added.append(fact)
            if target.get("provisional") and not source.get("provisional"):
                target["name"] = source["name"]
                target["facts"] = [f for f in target["facts"] if f["field"] != "identity.name"]
                target["facts"].append(next(f for f in source["facts"] if f["field"] == "identity.name"))
            target["provisional"] = bool(target.get("provisional") and source.get("provisional"))
            target["updated_at"] = profile.now()
            moved_voice = vp.move(user_id, into_user_id)
            moved_face = fp.move(user_id, into_user_id)
            moved_history = people.move_history(user_id, into_user_id)
            at = profile.now()
            await people.commit(target, [
                {"field": f["field"], "op": "merge", "old": None, "new": f["value"], "source": f["source"],
                 "source_ref": f.get("source_ref"), "confidence": f["confidence"], "evidence": f.get("evidence"),
                 "at": at} for f in added
            ] + [{"field": "user", "op": "merge", "old": source["name"], "new": target["name"], "source": "manual",
                  "source_ref": user_id, "at": at}])
            await anyio.to_thread.run_sync(people.delete, user_id)
        return MergeResult(user_id=into_user_id, merged_user_id=user_id, voice_samples_moved=moved_voice,
                           face_samples_moved=moved_face, facts_added=len(added), history_moved=moved_history)

    async def forget(self, principal: Principal, user_id: str) -> ForgetResult:
        """Erase a user everywhere: voiceprints, face encodings, profile, history; then compact the
        stores so that no byte of them stays in the files."""
        user_id = await self.scoped(principal, user_id)
        _, vp = await self.voice_side()
        _, fp = await self.face_side()
        async with self._lock:
            await self.user(user_id)
            people = await self.people()
            n_voice, n_face = vp.erase(user_id), fp.erase(user_id)
            n_history = people.erase(user_id)
            stores = [vp.store, fp.store, people.store]
            for store in stores:
                await anyio.to_thread.run_sync(store.compact)
            await anyio.to_thread.run_sync(self._erase_inactive, user_id)
        log.info("user erased", extra={"fields": {"voice": n_voice, "face": n_face, "history": n_history}})
        return ForgetResult(user_id=user_id, voice_samples=n_voice, face_samples=n_face, history_entries=n_history,
                            compacted=True)

    def _erase_inactive(self, user_id: str) -> None:
        """Samples kept for models not in use now (the model was changed) are erased too."""
        if self.settings.qdrant_url:
            return
        active = {p.store.spec.name for p in self._prints.values()}
        for folder in sorted(self.dir.iterdir()):
            if folder.is_dir() and folder.name.startswith(("voice_", "face_")) and folder.name not in active:
                store = open_store(self.settings, SERVER, CollectionSpec(folder.name, dim=1, sparse=False))
                try:
                    store.delete_where(Where(equals={"user_id": user_id}))
                    store.compact()
                finally:
                    store.close()

    # -- voice --------------------------------------------------------------------------------

    def _clip(self, value: str) -> audio.Clip:
        data = load_bytes(value, "audio", self.settings, self.config.max_audio_bytes)
        return audio.load(data, self.config.max_audio_seconds, self.config.min_speech_seconds)

    def _embed_clip(self, model: VoiceModel, value: str) -> tuple[audio.Clip, np.ndarray]:
        clip = self._clip(value)
        return clip, model.embed(clip.speech)

    def voice_thresholds(self, model: VoiceModel, seconds: float) -> Thresholds:
        return model.curve.shifted(self.config.voice_threshold).at(seconds)

    async def _candidates(self, ranked: Sequence[tuple[str, float]]) -> tuple[list[Candidate], dict[str, Any]]:
        users = (await self.people()).names([u for u, _ in ranked])
        return [Candidate(user_id=u, name=users.get(u, {}).get("name"), score=round(s, 4)) for u, s in ranked], users

    async def _match_fields(self, d: Decision, ranked: Sequence[tuple[str, float]]) -> dict[str, Any]:
        candidates, users = await self._candidates(ranked)
        user = users.get(d.user_id or "", {})
        return {"decision": d.verdict, "user_id": d.user_id, "name": user.get("name"),
                "provisional": user.get("provisional") if d.user_id else None, "score": d.score, "margin": d.margin,
                "threshold": d.thresholds.known, "unknown_below": d.thresholds.unknown, "candidates": candidates}

    async def enroll_voice(self, principal: Principal, user_id: str, clips: list[str],
                           progress: Progress) -> SpeakerEnrollResult:
        user_id = await self.scoped(principal, user_id)
        if not clips or len(clips) > MAX_CLIPS:
            raise UserError(f"Send between 1 and {MAX_CLIPS} audio clips.")
        await self.user(user_id)
        model, prints = await self.voice_side()
        vectors, seconds = [], []
        for i, value in enumerate(clips):
            try:
                clip, vec = await voice.run(self._embed_clip, model, value)
            except UserError as exc:
                raise UserError(f"Clip {i + 1} of {len(clips)}: {exc} Nothing was enrolled.") from None
            vectors.append(vec)
            seconds.append(round(clip.speech_seconds, 2))
            await progress(i + 1, len(clips), f"embedded clip {i + 1} of {len(clips)}")
        async with self._lock:
            await self.user(user_id)
            if prints.count(user_id) + len(vectors) > MAX_SAMPLES:
                raise UserError(f"A user holds at most {MAX_SAMPLES} voice samples.")
            await anyio.to_thread.run_sync(lambda: prints.add(user_id, vectors, "enroll", [{"seconds": s} for s in seconds]))
            counts = prints.counts(user_id)
        return SpeakerEnrollResult(user_id=user_id, added=len(vectors), speech_seconds=seconds, voice_samples=counts,
                                   model=model.name)

    async def identify_voice(self, principal: Principal, value: str, create_if_unknown: bool,
                             adapt: bool) -> VoiceMatch:
        model, prints = await self.voice_side()
        clip, vec = await voice.run(self._embed_clip, model, value)
        return await self._identify_vector(principal, model, prints, vec, clip.speech_seconds, create_if_unknown, adapt)

    async def _identify_vector(self, principal: Principal, model: VoiceModel, prints: Prints, vec: np.ndarray,
                               seconds: float, create_if_unknown: bool, adapt: bool) -> VoiceMatch:
        ranked = prints.rank([vec], 5, principal.user_id)[0]
        d = decide(ranked, self.voice_thresholds(model, seconds))
        created, adapted = None, False
        # a user-scoped token is one person: it matches only its own voice and creates nobody else
        if d.verdict == "unknown" and create_if_unknown and seconds >= PROVISIONAL_MIN_SPEECH and principal.user_id is None:
            async with self._lock:
                user = await self._new_user(f"Guest {uuid.uuid4().hex[:6]}", True, "session")
                await anyio.to_thread.run_sync(lambda: prints.add(user["user_id"], [vec], "provisional",
                                                                  [{"seconds": round(seconds, 2)}]))
            created = user["user_id"]
        elif (d.verdict == "known" and adapt and d.user_id and d.score is not None and seconds >= ADAPT_MIN_SPEECH
              and d.score >= d.thresholds.known + ADAPT_ABOVE and self.config.max_adapted > 0):
            async with self._lock:
                if (await self.people()).get(d.user_id) is not None:
                    uid = d.user_id
                    await anyio.to_thread.run_sync(lambda: prints.add(uid, [vec], ADAPTED, [{"seconds": round(seconds, 2)}]))
                    adapted = True
        fields = await self._match_fields(d, ranked)
        return VoiceMatch(**fields, speech_seconds=round(seconds, 2), created_user_id=created, adapted=adapted,
                          model=model.name)

    async def verify_voice(self, principal: Principal, user_id: str, value: str) -> VerifyResult:
        user_id = await self.scoped(principal, user_id)
        await self.user(user_id)
        model, prints = await self.voice_side()
        if not prints.count(user_id):
            raise UserError(f"User {user_id} has no voiceprint yet: speaker_enroll them first.")
        clip, vec = await voice.run(self._embed_clip, model, value)
        claimed = prints.rank([vec], 1, user_id)[0]
        others = [c for c in prints.rank([vec], 2, principal.user_id)[0] if c[0] != user_id][:1]
        d = decide(claimed + others, self.voice_thresholds(model, clip.speech_seconds))
        fields = await self._match_fields(d, sorted(claimed + others, key=lambda c: c[1], reverse=True))
        return VerifyResult(**fields, claimed_user_id=user_id, speech_seconds=round(clip.speech_seconds, 2),
                            model=model.name)

    async def reset_voice(self, principal: Principal, user_id: str, only_adapted: bool) -> ResetResult:
        user_id = await self.scoped(principal, user_id)
        _, prints = await self.voice_side()
        async with self._lock:
            await self.user(user_id)
            removed = prints.drop(user_id, ADAPTED if only_adapted else None)
            counts = prints.counts(user_id)
        return ResetResult(user_id=user_id, removed=removed, voice_samples=counts)

    def _windows(self, model: VoiceModel, value: str) -> tuple[audio.Clip, np.ndarray, np.ndarray, int]:
        clip = self._clip(value)
        vectors, starts, length = model.windows(clip.wav, 0.25 if clip.seconds <= 20 else 0.5)
        return clip, vectors, starts, length

    async def segment_voices(self, principal: Principal, value: str, create_if_unknown: bool) -> SegmentResult:
        model, prints = await self.voice_side()
        clip, vectors, starts, length = await voice.run(self._windows, model, value)
        usable = segment.speech_ratio(clip.keep, starts, length) >= segment.MIN_SPEECH_RATIO
        cuts = segment.change_points(vectors, starts, length, usable, clip.voiced)
        rate = audio.SAMPLE_RATE

        def speech_of(runs: list[tuple[float, float]]) -> np.ndarray:
            return np.concatenate([clip.wav[int(a * rate): int(b * rate)] for a, b in runs])

        def embed_all() -> tuple[list[list[tuple[float, float]]], list[np.ndarray]]:
            parts = segment.stretches(clip.keep, cuts)
            return segment.merge_alike(parts, [model.embed(speech_of(p)) for p in parts],
                                       lambda runs: model.embed(speech_of(runs)))

        parts, vec_list = await voice.run(embed_all)
        vecs = np.stack(vec_list) if vec_list else np.zeros((0, model.dim), dtype=np.float32)
        seconds = [sum(b - a for a, b in runs) for runs in parts]
        ranked = prints.rank(list(vecs), 3, principal.user_id) if len(vecs) else []
        known = [d.user_id if (d := decide(r, self.voice_thresholds(model, sec))).verdict == "known" else None
                 for r, sec in zip(ranked, seconds, strict=True)]
        labels = segment.label_stretches(vecs, known, seconds)
        turns = segment.join([segment.Turn(a, b, lab) for runs, lab in zip(parts, labels, strict=True)
                              for a, b in runs])
        order = list(dict.fromkeys(labels))
        speech = {lab: speech_of([(t.start, t.end) for t in turns if t.label == lab]) for lab in order}
        embedded = await voice.run(lambda: [model.embed(speech[lab]) for lab in order])
        matches: dict[str, VoiceMatch] = {}
        for lab, vec in zip(order, embedded, strict=True):
            seconds_lab = len(speech[lab]) / rate
            matches[lab] = await self._identify_vector(principal, model, prints, vec, seconds_lab,
                                                       create_if_unknown, False)
        # Labels found to be the same known person are one speaker; so is an 'uncertain' label whose
        # best candidate is a person known elsewhere in the recording (a turn split in two).
        first: dict[str, str] = {}
        for lab in order:
            m = matches[lab]
            if m.decision == "known" and m.user_id:
                first.setdefault(m.user_id, lab)
        same: dict[str, str] = {}
        for lab in order:
            m = matches[lab]
            if m.decision == "known" and m.user_id:
                same[lab] = first[m.user_id]
            elif m.decision == "uncertain" and m.candidates and m.candidates[0].user_id in first:
                same[lab] = first[m.candidates[0].user_id]
                matches[lab] = matches[same[lab]]
            else:
                same[lab] = lab
        turns = segment.join([segment.Turn(t.start, t.end, same[t.label]) for t in turns])
        tags = {lab: f"S{i + 1}" for i, lab in enumerate(dict.fromkeys(t.label for t in turns))}
        segments = [Segment(start=round(t.start, 2), end=round(t.end, 2), speaker=tags[t.label],
                            user_id=matches[t.label].user_id or matches[t.label].created_user_id,
                            decision=matches[t.label].decision) for t in turns]
        speakers = [SegmentSpeaker(speaker=tag, **matches[lab].model_dump()) for lab, tag in tags.items()]
        return SegmentResult(segments=segments, speakers=speakers, duration=round(clip.seconds, 2))

    # -- faces --------------------------------------------------------------------------------

    def _faces(self, model: FaceModel, value: str, upsample: int | None) -> tuple[images.Picture, list[Face]]:
        data = load_bytes(value, "image", self.settings, self.config.max_image_bytes)
        picture = images.load(data, self.config.max_image_pixels)
        return picture, model.faces(picture.rgb, upsample)

    @staticmethod
    def _box(face: Face, picture: images.Picture) -> Box:
        left, top, right, bottom = (round(v / picture.scale) for v in face.box)
        return Box(left=left, top=top, right=right, bottom=bottom)

    async def enroll_face(self, principal: Principal, user_id: str, values: list[str], face_index: int | None,
                          progress: Progress) -> FaceEnrollResult:
        user_id = await self.scoped(principal, user_id)
        if not values or len(values) > MAX_CLIPS:
            raise UserError(f"Send between 1 and {MAX_CLIPS} images.")
        await self.user(user_id)
        model, prints = await self.face_side()
        chosen: list[tuple[Face, Box]] = []
        for i, value in enumerate(values):
            where = f"Image {i + 1} of {len(values)}"
            try:
                picture, found = await faces.run(self._faces, model, value, None)
            except UserError as exc:
                raise UserError(f"{where}: {exc} Nothing was enrolled.") from None
            if not found:
                raise UserError(f"{where}: no face was found. Nothing was enrolled.")
            if len(found) > 1 and face_index is None:
                raise UserError(f"{where} shows {len(found)} faces: pass face_index (0 = largest) to say which. "
                                "Nothing was enrolled.")
            index = face_index or 0
            if index >= len(found):
                raise UserError(f"{where} shows {len(found)} faces; face_index {index} does not exist.")
            chosen.append((found[index], self._box(found[index], picture)))
            await progress(i + 1, len(values), f"encoded image {i + 1} of {len(values)}")
        async with self._lock:
            await self.user(user_id)
            if prints.count(user_id) + len(chosen) > MAX_SAMPLES:
                raise UserError(f"A user holds at most {MAX_SAMPLES} face samples.")
            await anyio.to_thread.run_sync(lambda: prints.add(user_id, [f.embedding for f, _ in chosen], "enroll",
                                                              [{} for _ in chosen]))
            total = prints.count(user_id)
        return FaceEnrollResult(user_id=user_id, added=len(chosen), boxes=[b for _, b in chosen], face_samples=total,
                                model=model.name)

    async def identify_faces(self, principal: Principal, value: str, upsample: int | None) -> FaceResult:
        model, prints = await self.face_side()
        picture, found = await faces.run(self._faces, model, value, upsample)
        ranked_all = prints.rank([f.embedding for f in found], 5, principal.user_id) if found else []
        th = model.thresholds.shifted(self.config.face_threshold)
        matches = []
        for face, ranked in zip(found, ranked_all, strict=True):
            fields = await self._match_fields(decide(ranked, th), ranked)
            matches.append(FaceMatch(**fields, box=self._box(face, picture), detection_score=round(face.score, 3)))
        return FaceResult(faces=matches, width=picture.width, height=picture.height, model=model.name)

    async def identify(self, principal: Principal, audio_value: str | None, image_value: str | None,
                       create_if_unknown: bool) -> IdentifyResult:
        if not audio_value and not image_value:
            raise UserError("Send audio, an image, or both.")
        heard: tuple[VoiceModel, Prints, np.ndarray, float] | None = None
        vm = None
        if audio_value:
            model, prints = await self.voice_side()
            clip, vec = await voice.run(self._embed_clip, model, audio_value)
            heard = (model, prints, vec, clip.speech_seconds)
            vm = await self._identify_vector(principal, *heard, False, False)
        fr = await self.identify_faces(principal, image_value, None) if image_value else None
        fm = fr.faces[0] if fr and fr.faces else None
        if fr is not None and fm is None and vm is None:
            raise UserError("No face was found in the image.")
        involved = {c.user_id for m in (vm, fm) if m is not None for c in m.candidates}
        parts: list[tuple[Decision, list[tuple[str, float]], set[str]] | None] = []
        for m, held in ((vm, self._prints.get("voice")), (fm, self._prints.get("face"))):
            if m is None or held is None:
                parts.append(None)
                continue
            enrolled = {u for u in involved if held.count(u)}
            th = Thresholds(m.threshold, m.unknown_below, 0.0)
            parts.append((Decision(m.decision, m.user_id, m.score, m.margin, th),
                          [(c.user_id, c.score) for c in m.candidates], enrolled))
        d, why = fuse(parts[0], parts[1])
        created = None
        if d.verdict == "unknown" and create_if_unknown and heard is not None:
            vm = await self._identify_vector(principal, *heard, True, False)
            created = vm.created_user_id
        users = (await self.people()).names([d.user_id] if d.user_id else [])
        return IdentifyResult(decision=d.verdict, user_id=d.user_id, name=users.get(d.user_id or "", {}).get("name"),
                              score=d.score, margin=d.margin, threshold=1.0, reason=why, created_user_id=created,
                              voice=vm, face=fm)

    # -- profiles -----------------------------------------------------------------------------

    async def get_profile(self, principal: Principal, user_id: str) -> profile.Profile:
        return profile.build(await self.user(await self.scoped(principal, user_id)))

    def _checked(self, patches: Sequence[profile.Patch]) -> list[profile.Patch]:
        out, problems = [], []
        for i, p in enumerate(patches):
            try:
                out.append(profile.check(p))
            except ValueError as exc:
                problems.append(f"patch {i + 1} ({p.op} {p.field}): {exc}")
        if problems:
            raise UserError("Nothing was changed. " + "; ".join(problems))
        return out

    async def _apply(self, user_id: str, patches: list[profile.Patch], source: profile.Source,
                     source_ref: str | None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Apply checked patches under the write lock: all of them or (on error) none."""
        user = await self.user(user_id)
        facts = [dict(f) for f in user["facts"]]
        try:
            changes = [c for p in patches if (c := profile.apply(facts, p, source, source_ref)) is not None]
        except ValueError as exc:
            raise UserError(f"Nothing was changed: {exc}.") from None
        name = next((f["value"] for f in facts if f["field"] == "identity.name"), user["name"])
        user.update(facts=facts, name=name, updated_at=profile.now())
        return user, await (await self.people()).commit(user, changes)

    async def update_profile(self, principal: Principal, user_id: str, patches: list[profile.Patch],
                             source: profile.Source, source_ref: str | None) -> ProfileUpdateResult:
        user_id = await self.scoped(principal, user_id)
        checked = self._checked(patches)
        async with self._lock:
            user, rows = await self._apply(user_id, checked, source, source_ref)
        return ProfileUpdateResult(user_id=user_id, changes=[_change(r) for r in rows], profile=profile.build(user))

    async def history(self, principal: Principal, user_id: str, field: str | None, limit: int,
                      cursor: str | None) -> HistoryResult:
        user_id = await self.scoped(principal, user_id)
        await self.user(user_id)
        hits, nxt = (await self.people()).history(user_id, field, limit, cursor)
        return HistoryResult(user_id=user_id, changes=[_change({"id": h.id, **h.payload}) for h in hits],
                             next_cursor=nxt)

    async def extract_profile(self, principal: Principal, user_id: str, conversation: str, session_id: str | None,
                              apply: bool) -> ExtractResult:
        user_id = await self.scoped(principal, user_id)
        if self.llm is None:
            raise UserError(
                "profile_extract needs an LLM and none is configured: set ALPHAAVATAR_LLM_MODEL and "
                "OPENAI_BASE_URL (or OPENAI_API_KEY). Without one, read the conversation yourself and send "
                "the changes with profile_update."
            )
        current = profile.build(await self.user(user_id))
        try:
            raw = await extract.propose(self.llm, current, conversation)
        except ValueError as exc:
            raise UserError(f"The LLM's answer could not be used: {exc}.") from None
        except Exception as exc:  # the endpoint is the outside world: say what failed, keep serving
            raise UserError(f"The LLM at {self.llm.base_url or 'the OpenAI API'} failed: {type(exc).__name__}.") from None
        proposals: list[Proposal] = []
        good: list[profile.Patch] = []
        for item in raw:
            try:
                patch = profile.check(extract.as_patch(item))
            except ValueError as exc:  # pydantic's ValidationError is a ValueError
                bad = profile.Patch.model_construct(op=item.get("op", "set"), field=str(item.get("field", "?"))[:60],
                                                    value=None, confidence=0.0, evidence=None)
                proposals.append(Proposal(patch=bad, valid=False, reason=str(exc).splitlines()[0][:300]))
                continue
            if not extract.supported(patch.evidence, conversation):
                proposals.append(Proposal(patch=patch, valid=False, reason="its evidence is not a quote from the conversation"))
                continue
            proposals.append(Proposal(patch=patch, valid=True))
            good.append(patch)
        applied: list[Change] = []
        if apply and good:
            async with self._lock:
                _, rows = await self._apply(user_id, good, "session", session_id)
            applied = [_change(r) for r in rows]
        return ExtractResult(user_id=user_id, proposals=proposals, applied=applied, model=self.llm.model)

    async def search_profiles(self, principal: Principal, query: str, limit: int) -> SearchResult:
        hits = await (await self.people()).search(query, limit, principal.user_id)
        words = {w for w in re.findall(r"\w+", query.casefold()) if len(w) > 2}
        results = []
        for h in hits:
            lines = [line for line in str(h.payload.get("text", "")).splitlines()
                     if words & set(re.findall(r"\w+", line.casefold()))]
            results.append(SearchHit(user_id=h.id, name=h.payload["name"], provisional=h.payload.get("provisional", False),
                                     score=round(h.score, 5), matches=lines[:5]))
        return SearchResult(results=results)
