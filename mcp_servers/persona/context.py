"""What every persona service shares, one per process: settings, the models (loading in the
background from startup), the stores (opened once), and the one lock that serialises writes.

The services (`user_service.py`, `voice_identity.py`, `face_identity.py`, `fused_identity.py`,
`profile_service.py`) hold no state of their own: they are views on this context.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

from mcp_servers.core import heap
from mcp_servers.core.auth import Principal, scope_user
from mcp_servers.core.embeddings import get_embedder
from mcp_servers.core.errors import Forbidden, NotFound
from mcp_servers.core.health import load_state
from mcp_servers.core.llm import get_llm
from mcp_servers.core.settings import Settings
from mcp_servers.core.store import CollectionSpec, VectorStore, open_store
from mcp_servers.core.store.aio import off_loop

from . import backends, faces, profile, voice
from .config import PersonaSettings, models_dir
from .decisions import Decision
from .faces import FaceModel
from .models import Candidate
from .people_store import People, people_spec
from .prints import Prints, prints_spec
from .voice import VoiceModel

SERVER = "persona"
MAX_CLIPS = 50  # clips or photos in one enrol call
M = TypeVar("M", VoiceModel, FaceModel)


def _safe(name: str) -> str:
    return re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-")[:60]


class PersonaContext:
    def __init__(self, settings: Settings, config: PersonaSettings | None = None):
        self.settings = settings
        self.config = config or PersonaSettings()
        self.dir = settings.data_dir(SERVER)
        self.embedder = get_embedder(settings)
        self.llm = get_llm(settings)
        self.lock = asyncio.Lock()  # held by every write, so a write sees the state it checked
        self.prints: dict[str, Prints] = {}  # by modality ('voice', 'face'), once its model is loaded
        self._voice_model: Future[VoiceModel] | None = None
        self._face_model: Future[FaceModel] | None = None
        self._people: People | None = None
        self._open_lock = asyncio.Lock()

    # -- life cycle ---------------------------------------------------------------------------

    def warm(self) -> None:
        """Start loading both models on their worker threads (errors surface at first use)."""
        if self._voice_model is None:
            self._voice_model = heap.settle_after(voice.WORKER.submit(
                backends.load_voice_model, self.config.voice_model, models_dir(self.settings.home)))
        if self._face_model is None:
            self._face_model = heap.settle_after(faces.WORKER.submit(
                backends.load_face_model, self.config.face_model, self.config.insightface_root))

    async def start(self) -> None:
        self.warm()
        await self.people()

    async def close(self) -> None:
        for prints in self.prints.values():
            await off_loop(prints.store.close)
        if self._people is not None:
            await off_loop(self._people.store.close)
        self.prints, self._people = {}, None

    def health(self) -> dict[str, object]:
        return {"voice_model": load_state(self._voice_model), "face_model": load_state(self._face_model)}

    # -- stores and models --------------------------------------------------------------------

    async def _open(self, spec: CollectionSpec) -> VectorStore:
        return await off_loop(open_store, self.settings, SERVER, spec)

    async def people(self) -> People:
        async with self._open_lock:
            if self._people is None:
                self._people = People(await self._open(people_spec(self.embedder.dim)), self.embedder)
        return self._people

    async def _side(self, modality: str, loading: Future[M] | None, *, centroids: bool,
                    max_adapted: int) -> tuple[M, Prints]:
        """One modality's model (once loaded) and its samples, in a collection named after the model."""
        assert loading is not None
        model = await asyncio.wrap_future(loading)
        async with self._open_lock:
            if modality not in self.prints:
                store = await self._open(prints_spec(modality, _safe(model.name), model.dim))
                self.prints[modality] = Prints(store, centroids=centroids, max_adapted=max_adapted)
        return model, self.prints[modality]

    async def voice_side(self) -> tuple[VoiceModel, Prints]:
        self.warm()
        return await self._side("voice", self._voice_model, centroids=True, max_adapted=self.config.max_adapted)

    async def face_side(self) -> tuple[FaceModel, Prints]:
        self.warm()
        return await self._side("face", self._face_model, centroids=False, max_adapted=0)

    # -- who a call acts on -------------------------------------------------------------------

    async def user(self, user_id: str) -> dict[str, Any]:
        found = await (await self.people()).get(user_id)  # None for a malformed id as well
        if found is None:
            raise NotFound(f"No user {user_id!r}: user_list shows the users there are.")
        return found

    async def scoped(self, principal: Principal, user_id: str) -> str:
        """The user a call may act on. A user-scoped token is that user on every server: its persona
        user exists from the token's first use, so memory's 'alice' is persona's 'alice'."""
        user_id = scope_user(principal, user_id) or user_id
        people = await self.people()
        if principal.user_id is not None and await people.get(user_id) is None:
            async with self.lock:
                if await people.get(user_id) is None:
                    await self.new_user(user_id, provisional=False, source="manual", user_id=user_id)
        return user_id

    @staticmethod
    def unscoped(principal: Principal, what: str) -> None:
        if principal.user_id is not None:
            raise Forbidden(f"A token scoped to one user cannot {what}.")

    async def new_user(self, name: str, *, provisional: bool, source: profile.Source,
                       user_id: str | None = None) -> dict[str, Any]:
        """Write a new user (the caller holds the lock), named by a first fact."""
        user_id = user_id or str(uuid.uuid4())
        at = profile.now()
        user: dict[str, Any] = {"kind": "user", "user_id": user_id, "name": name, "provisional": provisional,
                                "created_at": at, "updated_at": at, "facts": []}
        change = profile.apply(user["facts"], profile.check(profile.Patch(op="set", field="identity.name", value=name)),
                               source, None)
        await (await self.people()).commit(user, [{**(change or {}), "op": "create"}])
        return user

    async def match_fields(self, d: Decision, ranked: Sequence[tuple[str, float]]) -> dict[str, Any]:
        """A decision as the fields of a `Match`: the user and the candidates, named."""
        users = await (await self.people()).names([u for u, _ in ranked])
        candidates = [Candidate(user_id=u, name=users.get(u, {}).get("name"), score=round(s, 4)) for u, s in ranked]
        user = users.get(d.user_id or "", {})
        return {"decision": d.verdict, "user_id": d.user_id, "name": user.get("name"),
                "provisional": user.get("provisional") if d.user_id else None, "score": d.score, "margin": d.margin,
                "threshold": d.thresholds.known, "unknown_below": d.thresholds.unknown, "candidates": candidates}
