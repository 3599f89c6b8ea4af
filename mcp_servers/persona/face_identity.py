"""Face identity: enrol face encodings, and identify every face in a photo."""

from __future__ import annotations

from mcp_servers.core.auth import Principal
from mcp_servers.core.errors import UserError
from mcp_servers.core.params import Progress

from . import images
from .context import MAX_CLIPS, PersonaContext
from .decisions import decide
from .faces import WORKER, Face, FaceModel
from .media import load_bytes
from .models import Box, FaceEnrollResult, FaceMatch, FaceResult
from .prints import MAX_SAMPLES


def _box(face: Face, picture: images.Picture) -> Box:
    """A face's box in the original image's pixels."""
    left, top, right, bottom = (round(v / picture.scale) for v in face.box)
    return Box(left=left, top=top, right=right, bottom=bottom)


class FaceIdentity:
    def __init__(self, ctx: PersonaContext):
        self.ctx = ctx

    def _faces(self, model: FaceModel, value: str, upsample: int | None) -> tuple[images.Picture, list[Face]]:
        config = self.ctx.config
        data = load_bytes(value, "image", self.ctx.settings, config.max_image_bytes)
        picture = images.load(data, config.max_image_pixels)
        return picture, model.faces(picture.rgb, upsample)

    async def enroll(self, principal: Principal, user_id: str, values: list[str], face_index: int | None,
                     progress: Progress) -> FaceEnrollResult:
        user_id = await self.ctx.scoped(principal, user_id)
        if not values or len(values) > MAX_CLIPS:
            raise UserError(f"Send between 1 and {MAX_CLIPS} images.")
        await self.ctx.user(user_id)
        model, prints = await self.ctx.face_side()
        chosen: list[tuple[Face, Box]] = []
        for i, value in enumerate(values):
            where = f"Image {i + 1} of {len(values)}"
            try:
                picture, found = await WORKER.run(self._faces, model, value, None)
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
            chosen.append((found[index], _box(found[index], picture)))
            await progress(i + 1, len(values), f"encoded image {i + 1} of {len(values)}")
        async with self.ctx.lock:
            await self.ctx.user(user_id)
            if await prints.count(user_id) + len(chosen) > MAX_SAMPLES:
                raise UserError(f"A user holds at most {MAX_SAMPLES} face samples.")
            await prints.add(user_id, [f.embedding for f, _ in chosen], "enroll", [{} for _ in chosen])
            total = await prints.count(user_id)
        return FaceEnrollResult(user_id=user_id, added=len(chosen), boxes=[b for _, b in chosen], face_samples=total,
                                model=model.name)

    async def identify(self, principal: Principal, value: str, *, upsample: int | None = None) -> FaceResult:
        model, prints = await self.ctx.face_side()
        picture, found = await WORKER.run(self._faces, model, value, upsample)
        ranked_all = await prints.rank([f.embedding for f in found], 5, principal.user_id) if found else []
        th = model.thresholds.shifted(self.ctx.config.face_threshold)
        matches = []
        for face, ranked in zip(found, ranked_all, strict=True):
            fields = await self.ctx.match_fields(decide(ranked, th), ranked)
            matches.append(FaceMatch(**fields, box=_box(face, picture), detection_score=round(face.score, 3)))
        return FaceResult(faces=matches, width=picture.width, height=picture.height, model=model.name)
