"""Profiles: read, patch (all or nothing, every change in the history), extract with an LLM, search."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mcp_servers.core.auth import Principal
from mcp_servers.core.batching import GroupCommit
from mcp_servers.core.errors import UserError
from mcp_servers.core.llm import llm_failed, llm_unavailable

from . import profile, profile_extract
from .context import PersonaContext
from .models import Change, ExtractResult, HistoryResult, ProfileUpdateResult, Proposal, SearchHit, SearchResult


def _change(row: dict[str, Any]) -> Change:
    return Change.model_validate({k: row.get(k) for k in Change.model_fields})


@dataclass
class Patching:
    """One call's checked patches for one user: applied all together or not at all."""

    user_id: str
    patches: list[profile.Patch]
    source: profile.Source
    source_ref: str | None
    heard_by: list[str] = field(default_factory=list)  # who was present when it was said


Applied = tuple[dict[str, Any], list[dict[str, Any]]]  # the user as written, its change records


class Profiles:
    def __init__(self, ctx: PersonaContext):
        self.ctx = ctx
        # concurrent patchings share one lock hold, one embedding call and one store write
        self.writes: GroupCommit[Patching, Applied] = GroupCommit(self._write)

    async def get(self, principal: Principal, user_id: str, present: Sequence[str] | None = None) -> profile.Profile:
        return profile.build(await self.ctx.user(await self.ctx.scoped(principal, user_id)), present)

    async def _write(self, batch: list[Patching]) -> list[Applied | BaseException]:
        """Apply a batch under the write lock, in the order the calls came (a user's later patching
        sees the earlier ones). A patching that cannot apply changes nothing and is told why; the
        others are written together."""
        async with self.ctx.lock:
            users: dict[str, dict[str, Any]] = {}
            outcomes: list[int | BaseException] = []  # an index into writes, or the call's error
            writes: list[Applied] = []
            for p in batch:
                try:
                    user = dict(users.get(p.user_id) or await self.ctx.user(p.user_id))
                    facts = [dict(f) for f in user["facts"]]
                    changes = [c for patch in p.patches if (c := profile.apply(
                        facts, patch, p.source, p.source_ref, p.user_id, p.heard_by)) is not None]
                except UserError as exc:
                    outcomes.append(exc)
                    continue
                except ValueError as exc:
                    outcomes.append(UserError(f"Nothing was changed: {exc}."))
                    continue
                name = next((f["value"] for f in facts if f["field"] == "identity.name"), user["name"])
                user.update(facts=facts, name=name, updated_at=profile.now())
                users[p.user_id] = user
                outcomes.append(len(writes))
                writes.append((user, changes))
            rows = await (await self.ctx.people()).commit_many(writes) if writes else []
        return [o if isinstance(o, BaseException) else (writes[o][0], rows[o]) for o in outcomes]

    async def update(self, principal: Principal, user_id: str, patches: list[profile.Patch],
                     source: profile.Source, source_ref: str | None,
                     heard_by: Sequence[str] = ()) -> ProfileUpdateResult:
        user_id = await self.ctx.scoped(principal, user_id)
        user, rows = await self.writes.submit(Patching(user_id, profile.check_all(patches), source, source_ref,
                                                       list(heard_by)))
        return ProfileUpdateResult(user_id=user_id, changes=[_change(r) for r in rows], profile=profile.build(user))

    async def history(self, principal: Principal, user_id: str, field: str | None, limit: int,
                      cursor: str | None) -> HistoryResult:
        user_id = await self.ctx.scoped(principal, user_id)
        await self.ctx.user(user_id)
        hits, nxt = await (await self.ctx.people()).history(user_id, field, limit, cursor)
        return HistoryResult(user_id=user_id, changes=[_change({"id": h.id, **h.payload}) for h in hits],
                             next_cursor=nxt)

    async def extract(self, principal: Principal, user_id: str, conversation: str, session_id: str | None, *,
                      apply: bool) -> ExtractResult:
        user_id = await self.ctx.scoped(principal, user_id)
        llm = self.ctx.llm
        if llm is None:
            raise llm_unavailable("profile_extract", "Without one, read the conversation yourself and send the "
                                  "changes with profile_update.")
        current = profile.build(await self.ctx.user(user_id))
        try:
            raw = await profile_extract.propose(llm, current, conversation)
        except Exception as exc:  # the endpoint is the outside world: say what failed, keep serving
            raise llm_failed(exc) from None
        proposals: list[Proposal] = []
        good: list[profile.Patch] = []
        for item in raw:
            try:
                patch = profile.check(profile_extract.as_patch(item))
            except ValueError as exc:  # pydantic's ValidationError is a ValueError
                bad = profile.Patch.model_construct(op=item.get("op", "set"), field=str(item.get("field", "?"))[:60],
                                                    value=None, confidence=0.0, evidence=None)
                proposals.append(Proposal(patch=bad, valid=False, reason=str(exc).splitlines()[0][:300]))
                continue
            if not profile_extract.supported(patch.evidence, conversation):
                proposals.append(Proposal(patch=patch, valid=False, reason="its evidence is not a quote from the conversation"))
                continue
            proposals.append(Proposal(patch=patch, valid=True))
            good.append(patch)
        applied: list[Change] = []
        if apply and good:
            _, rows = await self.writes.submit(Patching(user_id, good, "session", session_id))
            applied = [_change(r) for r in rows]
        return ExtractResult(user_id=user_id, proposals=proposals, applied=applied, model=llm.model)

    async def search(self, principal: Principal, query: str, limit: int) -> SearchResult:
        hits = await (await self.ctx.people()).search(query, limit, only=principal.user_id)
        words = {w for w in re.findall(r"\w+", query.casefold()) if len(w) > 2}
        results = []
        for h in hits:
            lines = [line for line in str(h.payload.get("text", "")).splitlines()
                     if words & set(re.findall(r"\w+", line.casefold()))]
            results.append(SearchHit(user_id=h.payload["user_id"], name=h.payload["name"], provisional=h.payload.get("provisional", False),
                                     score=round(h.score, 5), matches=lines[:5]))
        return SearchResult(results=results)
