"""Who this is from voice and face together: each modality decides, then the two are fused
(`decisions.fuse`: scores on a common scale; a modality with nothing enrolled for someone does
not vote against them)."""

from __future__ import annotations

from mcp_servers.core.auth import Principal
from mcp_servers.core.errors import UserError

from .context import PersonaContext
from .decisions import Decision, Thresholds, fuse
from .face_identity import FaceIdentity
from .models import IdentifyResult, Match
from .voice_identity import VoiceIdentity


class FusedIdentity:
    def __init__(self, ctx: PersonaContext, voices: VoiceIdentity, faces: FaceIdentity):
        self.ctx = ctx
        self.voices = voices
        self.faces = faces

    async def identify(self, principal: Principal, audio_value: str | None, image_value: str | None, *,
                       create_if_unknown: bool) -> IdentifyResult:
        if not audio_value and not image_value:
            raise UserError("Send audio, an image, or both.")
        heard = await self.voices.hear(audio_value) if audio_value else None
        vm = await self.voices.match(principal, heard) if heard is not None else None
        fr = await self.faces.identify(principal, image_value) if image_value else None
        fm = fr.faces[0] if fr and fr.faces else None
        if fr is not None and fm is None and vm is None:
            raise UserError("No face was found in the image.")
        involved = {c.user_id for m in (vm, fm) if m is not None for c in m.candidates}
        parts: list[tuple[Decision, list[tuple[str, float]], set[str]] | None] = []
        m: Match | None
        for m, held in ((vm, self.ctx.prints.get("voice")), (fm, self.ctx.prints.get("face"))):
            if m is None or held is None:
                parts.append(None)
                continue
            enrolled = {u for u in involved if await held.count(u)}
            th = Thresholds(m.threshold, m.unknown_below, 0.0)
            parts.append((Decision(m.decision, m.user_id, m.score, m.margin, th),
                          [(c.user_id, c.score) for c in m.candidates], enrolled))
        d, why = fuse(parts[0], parts[1])
        created = None
        if d.verdict == "unknown" and create_if_unknown and heard is not None:
            vm = await self.voices.match(principal, heard, create_if_unknown=True)
            created = vm.created_user_id
        users = await (await self.ctx.people()).names([d.user_id] if d.user_id else [])
        return IdentifyResult(decision=d.verdict, user_id=d.user_id, name=users.get(d.user_id or "", {}).get("name"),
                              score=d.score, margin=d.margin, threshold=1.0, reason=why, created_user_id=created,
                              voice=vm, face=fm)
