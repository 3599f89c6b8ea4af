"""Users: create, describe, list, rename, merge and forget (erasure everywhere, files compacted)."""

from __future__ import annotations

import logging
from typing import Any

from mcp_servers.core.auth import Principal, scope_user
from mcp_servers.core.errors import UserError
from mcp_servers.core.params import MAX_USER_ID
from mcp_servers.core.store import CollectionSpec, Where, open_store
from mcp_servers.core.store.aio import off_loop

from . import profile
from .context import SERVER, PersonaContext
from .models import ForgetResult, MergeResult, User, UserList
from .people_store import MergeIntent, time_id, well_formed

log = logging.getLogger(__name__)


class Users:
    def __init__(self, ctx: PersonaContext):
        self.ctx = ctx

    async def create(self, principal: Principal, name: str, *, provisional: bool,
                     user_id: str | None = None) -> User:
        """A new user; `user_id` chooses the id (the one the caller's other servers use). A user-scoped
        token creates (or names) only its own user."""
        if not name.strip():
            raise UserError("A user needs a name.")
        user_id = scope_user(principal, user_id)
        if user_id is not None and not well_formed(user_id):
            raise UserError(f"A user id is 1 to {MAX_USER_ID} printable characters with no spaces around it.")
        async with self.ctx.lock:
            if user_id is not None and await (await self.ctx.people()).get(user_id) is not None:
                raise UserError(f"User {user_id!r} exists already: user_get shows it, user_rename renames it.")
            user = await self.ctx.new_user(" ".join(name.split()), provisional=provisional, source="manual",
                                           user_id=user_id)
        return await self.describe(user)

    async def get(self, principal: Principal, user_id: str) -> User:
        return await self.describe(await self.ctx.user(await self.ctx.scoped(principal, user_id)))

    async def describe(self, user: dict[str, Any]) -> User:
        _, vp = await self.ctx.voice_side()
        _, fp = await self.ctx.face_side()
        uid = user["user_id"]
        return User(user_id=uid, name=user["name"], provisional=user.get("provisional", False),
                    created_at=user["created_at"], updated_at=user["updated_at"], voice_samples=await vp.counts(uid),
                    face_samples=await fp.count(uid), facts=len(user.get("facts", [])))

    async def page(self, principal: Principal, limit: int, cursor: str | None, *,
                   provisional: bool | None) -> UserList:
        people = await self.ctx.people()
        hits, nxt = await people.page(limit, cursor, provisional=provisional, only=principal.user_id)
        users = [await self.describe(h.payload) for h in hits]
        total = len(users) if principal.user_id else await people.count(provisional=provisional)
        return UserList(users=users, next_cursor=nxt, total=total)

    async def rename(self, principal: Principal, user_id: str, name: str) -> User:
        user_id = await self.ctx.scoped(principal, user_id)
        patch = profile.check_all([profile.Patch(op="set", field="identity.name", value=name)])[0]
        async with self.ctx.lock:
            user = await self.ctx.user(user_id)
            old = user["name"]
            change = profile.apply(user["facts"], patch, "manual", "user_rename")
            user.update(name=patch.value, provisional=False, updated_at=profile.now())
            await (await self.ctx.people()).commit(
                user, [{**(change or {}), "op": "rename", "old": old, "new": patch.value}])
        return await self.describe(user)

    async def merge(self, principal: Principal, user_id: str, into_user_id: str) -> MergeResult:
        """Join one user into another: all of it or, after a crash at any moment, none or (finished by
        `recover` on the next start) all. The intent is stored first; every step after it can run again."""
        self.ctx.unscoped(principal, "merge users")
        if user_id == into_user_id:
            raise UserError("A user cannot be merged into themselves.")
        await self.ctx.voice_side()  # both models loaded before the first write, so `_finish` cannot wait on them
        await self.ctx.face_side()
        async with self.ctx.lock:
            source, target = await self.ctx.user(user_id), await self.ctx.user(into_user_id)
            added = profile.merge(target, source)
            intent = MergeIntent(id=time_id(), from_user=user_id, into_user=into_user_id, user=target,
                                 changes=[{"id": time_id(), **c} for c in profile.merge_changes(added, source, target)],
                                 facts_added=len(added))
            await (await self.ctx.people()).intend_merge(intent)
            moved_voice, moved_face, moved_history = await self._finish(intent)
        return MergeResult(user_id=into_user_id, merged_user_id=user_id, voice_samples_moved=moved_voice,
                           face_samples_moved=moved_face, facts_added=intent.facts_added, history_moved=moved_history)

    async def _finish(self, intent: MergeIntent) -> tuple[int, int, int]:
        """The writes of a merge, each idempotent (a move moves what is still on the source; the
        profile and records are the intent's, ids fixed), so a rerun after any prefix ends the same;
        the voice, face and history entries moved by this run."""
        _, vp = await self.ctx.voice_side()
        _, fp = await self.ctx.face_side()
        people = await self.ctx.people()
        moved_voice = await vp.move(intent.from_user, intent.into_user)
        moved_face = await fp.move(intent.from_user, intent.into_user)
        moved_history = await people.move_history(intent.from_user, intent.into_user)
        await people.commit(intent.user, intent.changes)
        await people.end_merge(intent)
        return moved_voice, moved_face, moved_history

    async def recover(self) -> None:
        """Finish the merges a crash cut; run at startup, before any call can see half of one."""
        async with self.ctx.lock:
            for intent in await (await self.ctx.people()).pending_merges():
                moved = await self._finish(intent)
                log.warning("finished a merge cut by a crash", extra={"fields": {
                    "from": intent.from_user, "into": intent.into_user, "voice": moved[0], "face": moved[1],
                    "history": moved[2]}})

    async def forget(self, principal: Principal, user_id: str) -> ForgetResult:
        """Erase a user everywhere: voiceprints, face encodings, profile, history; then compact the
        stores so that no byte of them stays in the files."""
        user_id = await self.ctx.scoped(principal, user_id)
        _, vp = await self.ctx.voice_side()
        _, fp = await self.ctx.face_side()
        async with self.ctx.lock:
            await self.ctx.user(user_id)
            people = await self.ctx.people()
            n_voice, n_face = await vp.erase(user_id), await fp.erase(user_id)
            n_history = await people.erase(user_id)
            for store in (vp.store, fp.store, people.store):
                await off_loop(store.compact)
            await off_loop(self._erase_inactive, user_id)
        log.info("user erased", extra={"fields": {"voice": n_voice, "face": n_face, "history": n_history}})
        return ForgetResult(user_id=user_id, voice_samples=n_voice, face_samples=n_face, history_entries=n_history,
                            compacted=True)

    def _erase_inactive(self, user_id: str) -> None:
        """Samples kept for models not in use now (the model was changed) are erased too."""
        if self.ctx.settings.qdrant_url:
            return
        active = {p.store.spec.name for p in self.ctx.prints.values()}
        for folder in sorted(self.ctx.dir.iterdir()):
            if folder.is_dir() and folder.name.startswith(("voice_", "face_")) and folder.name not in active:
                store = open_store(self.ctx.settings, SERVER, CollectionSpec(folder.name, dim=1, sparse=False))
                try:
                    store.delete_where(Where(equals={"user_id": user_id}))
                    store.compact()
                finally:
                    store.close()
