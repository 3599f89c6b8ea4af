"""The persona MCP server: who is speaking (voice, face, both), provisional users for new voices, and
a typed profile with provenance and history per user."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from mcp_servers.core import audit, auth, params
from mcp_servers.core.annotations import DESTRUCTIVE, OWNER_ONLY, READ_ONLY, WRITE
from mcp_servers.core.errors import UserError
from mcp_servers.core.results import rendered
from mcp_servers.core.server import new_server
from mcp_servers.core.settings import Settings
from mcp_servers.core.transports import ServerSpec
from mcp_servers.core.visibility import HEARD_HELP, PRESENT_HELP, People

from . import render
from .config import PersonaSettings
from .context import MAX_CLIPS, PersonaContext
from .face_identity import FaceIdentity
from .fused_identity import FusedIdentity
from .models import (
    ExtractResult,
    FaceEnrollResult,
    FaceResult,
    ForgetResult,
    HistoryResult,
    IdentifyResult,
    MergeResult,
    ProfileUpdateResult,
    ResetResult,
    SearchResult,
    SegmentResult,
    SpeakerEnrollResult,
    User,
    UserList,
    VerifyResult,
    VoiceMatch,
)
from .profile import Patch, Profile, Source
from .profile_service import Profiles
from .user_service import Users
from .voice_identity import VoiceIdentity

INSTRUCTIONS = """Who is speaking, and what we know of them. After each user turn, call speaker_identify
with the turn's audio (create_if_unknown=true gives a new voice a provisional user, so their memories
have an owner from the first turn); use the user_id it returns with the memory server and profile_get.
Answers are decisions: 'known' (user_id is who it is), 'unknown', or 'uncertain' (short or ambiguous
audio: ask, or wait for more speech). Name provisional users with user_rename, join duplicates with
user_merge. Audio: base64 WAV/FLAC/OGG (or a path under the allowed roots); images: base64 JPEG/PNG/WebP."""

UserId = Annotated[params.NamedUserId, Field(description="A user id, as user_create or an identify tool returns it.")]
Audio = Annotated[str, Field(min_length=1, description="Base64 WAV/FLAC/OGG (any rate, any channels, ≤ 60 s, ≤ 20 MB), "
                                                        "or a file path under the allowed roots.")]
Image = Annotated[str, Field(min_length=1, description="Base64 JPEG/PNG/WebP (≤ 20 MB, ≤ 40 MP), or a file path under "
                                                        "the allowed roots.")]
Name = Annotated[str, Field(min_length=1, max_length=200, description="The person's name.")]
Limit = Annotated[int, Field(ge=1, le=100, description="Page size.")]


class Message(BaseModel):
    role: str = Field(max_length=20)
    content: str = Field(max_length=20_000)


def create_server(settings: Settings) -> ServerSpec:
    persona = PersonaContext(settings, PersonaSettings())
    voices, faces = VoiceIdentity(persona), FaceIdentity(persona)
    fused, users, profiles = FusedIdentity(persona, voices, faces), Users(persona), Profiles(persona)
    mcp = new_server("persona", INSTRUCTIONS, settings)
    audit.install(mcp, settings, "persona", forget_tool="user_forget")

    # -- voice ----------------------------------------------------------------------------------

    @mcp.tool(annotations=WRITE)
    async def speaker_enroll(
        ctx: Context,
        user_id: UserId,
        audio: Annotated[str | list[str], Field(description=f"One clip, or a list of up to {MAX_CLIPS} clips, of "
                                                            "this user speaking (each: base64 WAV/FLAC/OGG or a path).")],
    ) -> Annotated[CallToolResult, SpeakerEnrollResult]:
        """Add voice samples to a user's voiceprint (3 clips of 2-3 s each make a good one). All clips
        are checked first: if one fails, none is added. Reports progress per clip."""
        clips = [audio] if isinstance(audio, str) else audio
        r = await voices.enroll(auth.caller(ctx), user_id, clips, ctx.report_progress)
        return rendered(r, render.speaker_enroll(r))

    @mcp.tool(annotations=WRITE)
    async def speaker_identify(
        ctx: Context,
        audio: Audio,
        create_if_unknown: Annotated[bool, Field(description="Give an unknown voice (≥ 1.5 s of speech) a new "
                                                             "provisional user, returned as created_user_id.")] = False,
        adapt: Annotated[bool, Field(description="Add a confident match to the user's voiceprint (bounded; "
                                                 "undo with speaker_reset).")] = False,
    ) -> Annotated[CallToolResult, VoiceMatch]:
        """Who is speaking? Answers known / unknown / uncertain with the score, the margin to the next
        candidate and the threshold used (it depends on the seconds of speech: short clips may be
        'uncertain' rather than wrong)."""
        r = await voices.identify(auth.caller(ctx), audio, create_if_unknown=create_if_unknown, adapt=adapt)
        return rendered(r, render.voice_match(r))

    @mcp.tool(annotations=READ_ONLY)
    async def speaker_verify(ctx: Context, user_id: UserId, audio: Audio) -> Annotated[CallToolResult, VerifyResult]:
        """Is this the voice of this user? 'known' only if it matches them and nobody else matches better."""
        r = await voices.verify(auth.caller(ctx), user_id, audio)
        return rendered(r, render.verify(r))

    @mcp.tool(annotations=WRITE)
    async def speaker_segment(
        ctx: Context,
        audio: Audio,
        create_if_unknown: Annotated[bool, Field(description="Give each unknown voice a provisional user.")] = False,
    ) -> Annotated[CallToolResult, SegmentResult]:
        """Who spoke when in a recording with several voices: segments with a speaker tag each, and per
        speaker a decision (known user, unknown, uncertain) made on all of their speech."""
        r = await voices.segment(auth.caller(ctx), audio, create_if_unknown=create_if_unknown)
        return rendered(r, render.segments(r))

    @mcp.tool(annotations=DESTRUCTIVE)
    async def speaker_reset(
        ctx: Context,
        user_id: UserId,
        only_adapted: Annotated[bool, Field(description="Drop only samples added by adaptation (default), "
                                                        "or the whole voiceprint.")] = True,
    ) -> Annotated[CallToolResult, ResetResult]:
        """Undo voiceprint adaptation for a user, or clear their voiceprint to enroll again."""
        r = await voices.reset(auth.caller(ctx), user_id, only_adapted=only_adapted)
        return rendered(r, render.reset(r))

    # -- faces ----------------------------------------------------------------------------------

    @mcp.tool(annotations=WRITE)
    async def face_enroll(
        ctx: Context,
        user_id: UserId,
        image: Annotated[str | list[str], Field(description=f"One photo, or a list of up to {MAX_CLIPS}, of this "
                                                            "user (base64 JPEG/PNG/WebP or a path).")],
        face_index: Annotated[int | None, Field(ge=0, le=19, description="Which face when a photo shows several "
                                                                         "(0 = largest).")] = None,
    ) -> Annotated[CallToolResult, FaceEnrollResult]:
        """Add face encodings to a user. All photos are checked first (one face each, or face_index);
        if one fails, none is added."""
        values = [image] if isinstance(image, str) else image
        r = await faces.enroll(auth.caller(ctx), user_id, values, face_index, ctx.report_progress)
        return rendered(r, render.face_enroll(r))

    @mcp.tool(annotations=READ_ONLY)
    async def face_identify(
        ctx: Context,
        image: Image,
        upsample: Annotated[int | None, Field(ge=0, le=2, description="Search for smaller faces at 2x/4x (slower); "
                                                                      "default: only when nothing is found.")] = None,
    ) -> Annotated[CallToolResult, FaceResult]:
        """Every face in a photo, largest first, each with its box and a decision (known / unknown /
        uncertain) with score, margin and threshold."""
        r = await faces.identify(auth.caller(ctx), image, upsample=upsample)
        return rendered(r, render.faces(r))

    @mcp.tool(annotations=WRITE)
    async def identify(
        ctx: Context,
        audio: Annotated[str | None, Field(description="Base64 WAV/FLAC/OGG, or a path.")] = None,
        image: Annotated[str | None, Field(description="Base64 JPEG/PNG/WebP, or a path (its largest face counts).")] = None,
        create_if_unknown: Annotated[bool, Field(description="When both say unknown, give the voice a "
                                                             "provisional user.")] = False,
    ) -> Annotated[CallToolResult, IdentifyResult]:
        """Who is this, from voice and face together: the two are fused (scores on a common scale,
        a modality with nothing enrolled for someone does not vote against them)."""
        r = await fused.identify(auth.caller(ctx), audio, image, create_if_unknown=create_if_unknown)
        return rendered(r, render.identified(r))

    # -- users ----------------------------------------------------------------------------------

    @mcp.tool(annotations=WRITE)
    async def user_create(
        ctx: Context,
        name: Name,
        provisional: Annotated[bool, Field(description="Not yet confirmed who this is.")] = False,
        user_id: Annotated[params.UserId, Field(min_length=1, description=(
            "An id of your own for this user, e.g. the user_id your memory server uses (default: a new UUID)."
        ))] = None,
    ) -> Annotated[CallToolResult, User]:
        """Create a user (then enroll their voice or face, and fill their profile)."""
        r = await users.create(auth.caller(ctx), name, provisional=provisional, user_id=user_id)
        return rendered(r, "Created " + render.user(r))

    @mcp.tool(annotations=READ_ONLY)
    async def user_get(ctx: Context, user_id: UserId) -> Annotated[CallToolResult, User]:
        """A user: name, provisional or not, voice and face samples held, number of profile facts."""
        r = await users.get(auth.caller(ctx), user_id)
        return rendered(r, render.user(r))

    @mcp.tool(annotations=READ_ONLY)
    async def user_list(
        ctx: Context,
        provisional: Annotated[bool | None, Field(description="Only provisional (true) or named (false) users.")] = None,
        limit: Limit = 20,
        cursor: params.Cursor = None,
    ) -> Annotated[CallToolResult, UserList]:
        """Users page by page."""
        r = await users.page(auth.caller(ctx), limit, cursor, provisional=provisional)
        return rendered(r, render.users(r))

    @mcp.tool(annotations=WRITE)
    async def user_rename(ctx: Context, user_id: UserId, name: Name) -> Annotated[CallToolResult, User]:
        """Name a user (a provisional user becomes a confirmed one)."""
        r = await users.rename(auth.caller(ctx), user_id, name)
        return rendered(r, "Renamed: " + render.user(r))

    @mcp.tool(annotations=DESTRUCTIVE, meta=OWNER_ONLY)
    async def user_merge(
        ctx: Context,
        user_id: Annotated[params.NamedUserId, Field(description="The user to merge away.")],
        into_user_id: Annotated[params.NamedUserId, Field(description="The user that remains.")],
    ) -> Annotated[CallToolResult, MergeResult]:
        """Merge one user into another (e.g. a provisional user who turns out to be a known one): voice
        samples, face encodings, profile facts and history all move; the first user ceases to exist."""
        r = await users.merge(auth.caller(ctx), user_id, into_user_id)
        return rendered(r, render.merged(r))

    @mcp.tool(annotations=DESTRUCTIVE)
    async def user_forget(ctx: Context, user_id: UserId) -> Annotated[CallToolResult, ForgetResult]:
        """Erase a user: voiceprints, face encodings, profile and history. The store files are
        rewritten so that nothing of them remains. Cannot be undone."""
        r = await users.forget(auth.caller(ctx), user_id)
        return rendered(r, render.forgot(r))

    # -- profiles -------------------------------------------------------------------------------

    @mcp.tool(annotations=READ_ONLY)
    async def profile_get(
        ctx: Context,
        user_id: UserId,
        present: Annotated[People | None, Field(description=PRESENT_HELP + " Only the facts all of them may hear "
                                                "(default: every fact).")] = None,
    ) -> Annotated[CallToolResult, Profile]:
        """A user's typed profile; every value with its source, confidence, first and last seen."""
        r = await profiles.get(auth.caller(ctx), user_id, present)
        return rendered(r, render.profile(r))

    @mcp.tool(annotations=WRITE)
    async def profile_update(
        ctx: Context,
        user_id: UserId,
        patches: Annotated[list[Patch], Field(min_length=1, max_length=50, description="Applied in order, all or none.")],
        source: Annotated[Source, Field(description="Where the values come from.")] = "manual",
        source_ref: Annotated[str | None, Field(max_length=200, description="The session id or tool name.")] = None,
        present: Annotated[People | None, Field(description=HEARD_HELP)] = None,
    ) -> Annotated[CallToolResult, ProfileUpdateResult]:
        """Change a profile with patches: set (one-value fields), add / remove (lists); each patch may say
        who may hear its fact."""
        r = await profiles.update(auth.caller(ctx), user_id, patches, source, source_ref, present or ())
        return rendered(r, render.updated(r))

    @mcp.tool(annotations=WRITE)
    async def profile_extract(
        ctx: Context,
        user_id: UserId,
        conversation: Annotated[str | list[Message], Field(description="A transcript, or chat messages.")],
        session_id: Annotated[str | None, Field(max_length=200, description="Recorded as the facts' source_ref.")] = None,
        apply: Annotated[bool, Field(description="Apply the valid proposals (default: only propose).")] = False,
    ) -> Annotated[CallToolResult, ExtractResult]:
        """Ask the configured LLM which profile changes a conversation supports, each with its quote;
        proposals whose quote is not in the conversation are refused. Without an LLM: a clear error."""
        text = conversation if isinstance(conversation, str) else "\n".join(
            f"{m.role}: {m.content}" for m in conversation)
        if not text.strip() or len(text) > 50_000:
            raise UserError("The conversation must hold between 1 and 50,000 characters.")
        r = await profiles.extract(auth.caller(ctx), user_id, text, session_id, apply=apply)
        return rendered(r, render.proposals(r))

    @mcp.tool(annotations=READ_ONLY)
    async def profile_history(
        ctx: Context,
        user_id: UserId,
        field: Annotated[str | None, Field(max_length=60, description="Only changes of this field.")] = None,
        limit: Limit = 50,
        cursor: params.Cursor = None,
    ) -> Annotated[CallToolResult, HistoryResult]:
        """Every change to a user's profile, oldest first: what, from what to what, from which source."""
        r = await profiles.history(auth.caller(ctx), user_id, field, limit, cursor)
        return rendered(r, render.history(r))

    @mcp.tool(annotations=READ_ONLY)
    async def profile_search(
        ctx: Context,
        query: Annotated[str, Field(min_length=1, max_length=500, description="What we know of them, in words.")],
        limit: Annotated[int, Field(ge=1, le=50)] = 10,
    ) -> Annotated[CallToolResult, SearchResult]:
        """Find users by what their profiles say (by meaning and by words)."""
        r = await profiles.search(auth.caller(ctx), query, limit)
        return rendered(r, render.found(r))

    async def startup() -> None:
        await persona.start()
        await users.recover()

    return ServerSpec(name="persona", mcp=mcp, startup=startup, shutdown=persona.close,
                      health=persona.health, ready=lambda: "loading" not in persona.health().values())

