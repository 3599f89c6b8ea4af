"""The character MCP server: any MCP host makes a character express, move, look and speak.

Tools publish protocol events on the character_bridge hub; renderers listen on its WebSocket
(`/character/ws` under `alphaavatar up`, the built-in viewer at `/character/`), and adapters
(AIRI, VTube Studio) forward them when configured. Nothing is stored: the state lives in the
hub of this process, and `character://state` reads it.
"""

# No `from __future__ import annotations`: tool signatures use per-server values (motions, params).

import base64
import binascii
import difflib
import json
from typing import Annotated, Any

import anyio
from mcp.types import CallToolResult
from pydantic import Field
from starlette.websockets import WebSocket

from character_bridge import espeak, lipsync
from character_bridge.adapters import Adapter, AiriAdapter, VTSMapping, VTubeStudioAdapter
from character_bridge.hub import Hub
from character_bridge.protocol import (
    EMOTIONS,
    STATES,
    Event,
    ExpressionEvent,
    GazeEvent,
    MotionEvent,
    ParamEvent,
    StateEvent,
)
from character_bridge.speech import Performer, SpeechPlan, plan_speech
from character_bridge.web import PUBLIC, routes
from mcp_servers.core import auth
from mcp_servers.core.annotations import READ_ONLY, WRITE
from mcp_servers.core.errors import UserError
from mcp_servers.core.results import rendered
from mcp_servers.core.server import new_server
from mcp_servers.core.settings import Settings
from mcp_servers.core.transports import ServerSpec

from .config import CharacterSettings
from .models import AdapterHealth, InterruptResult, Sent, SpeakResult, StatusResult, TimedEmotion
from .render import render_interrupt, render_sent, render_speak, render_status

INSTRUCTIONS = """Controls a virtual character that renderers (the built-in web viewer, AIRI, VTube Studio)
show live. Use character_speak for what the character says (emotion tags like [happy] inside the text
become expressions at that point; the clean text comes back for TTS), character_express for a face,
character_state for idle/listening/thinking/speaking, character_interrupt to stop speaking."""

MAX_AUDIO_B64 = 40 * 1024 * 1024


def _suggest(name: str, choices: list[str] | tuple[str, ...], what: str) -> UserError:
    close = difflib.get_close_matches(name.strip().lower(), list(choices), n=1, cutoff=0.6)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return UserError(f"Unknown {what}.{hint} Choose one of: {', '.join(choices)}.")


def _decode_audio(audio: str, max_seconds: float) -> tuple[Any, int]:
    if len(audio) > MAX_AUDIO_B64:
        raise UserError(f"The audio is larger than {MAX_AUDIO_B64 // 2**20} MB of base64; send a shorter clip.")
    payload = audio.split(",", 1)[1] if audio.startswith("data:") else audio
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise UserError("The audio is not valid base64; send a WAV/FLAC/OGG file encoded as base64.") from None
    try:
        return lipsync.decode_audio(data, max_seconds)
    except lipsync.AudioError as exc:
        raise UserError(f"Unusable audio: {exc}.") from None


OWNER_ONLY = ("The character is the avatar's shared stage, seen by everyone it talks to: driving or watching it "
              "takes the owner's token (ALPHAAVATAR_TOKEN), not a user-scoped one.")


def owner_watching(websocket: WebSocket) -> bool:
    """The hub's stream shows what the avatar says to whoever it talks to: the owner's to watch."""
    principal = auth.request_principal(websocket.scope)
    return principal is not None and principal.user_id is None


def create_server(settings: Settings) -> ServerSpec:
    cfg = CharacterSettings()
    hub = Hub(queue_size=cfg.queue_size, admit=owner_watching, subprotocol=auth.BEARER_SUBPROTOCOL)
    performer = Performer(hub)
    adapters: list[Adapter] = []
    if cfg.airi_url:
        adapters.append(AiriAdapter(hub, cfg.airi_url, cfg.airi_token.get_secret_value() if cfg.airi_token else None))
    if cfg.vts_url:
        adapters.append(VTubeStudioAdapter(hub, cfg.vts_url, token_path=settings.data_dir("character") / "vts_token",
                                           mapping=VTSMapping.load(cfg.vts_mapping)))

    mcp = new_server("character", INSTRUCTIONS, settings, owner_only=OWNER_ONLY)

    def send(event: Event) -> CallToolResult:
        hub.publish(event)
        data = event.model_dump(mode="json")
        sent = Sent(seq=event.seq, kind=data["kind"], renderers=hub.stats()["renderers"], event=data)
        return rendered(sent, render_sent(sent))

    @mcp.tool(annotations=WRITE)
    async def character_express(
        emotion: Annotated[str, Field(max_length=64, description="One of: " + ", ".join(EMOTIONS) + ".",
                                      json_schema_extra={"enum": list(EMOTIONS)})],
        intensity: Annotated[float, Field(ge=0.0, le=1.0, description="0 (hint) … 1 (full).")] = 0.8,
        duration_ms: Annotated[int, Field(ge=0, le=600_000, description="Hold time; 0 = until the next expression.")] = 0,
        fade_in_ms: Annotated[int, Field(ge=0, le=10_000)] = 150,
        fade_out_ms: Annotated[int, Field(ge=0, le=10_000)] = 300,
    ) -> Annotated[CallToolResult, Sent]:
        """Show an emotion on the character's face."""
        name = emotion.strip().lower()
        if name not in EMOTIONS:
            raise _suggest(name, EMOTIONS, "emotion")
        return send(ExpressionEvent(emotion=name, intensity=intensity, duration_ms=duration_ms,  # type: ignore[arg-type]
                                    fade_in_ms=fade_in_ms, fade_out_ms=fade_out_ms))

    @mcp.tool(annotations=WRITE)
    async def character_motion(
        name: Annotated[str, Field(max_length=64, description="One of: " + ", ".join(cfg.motions) + ".")],
        intensity: Annotated[float, Field(ge=0.0, le=1.0)] = 1.0,
    ) -> Annotated[CallToolResult, Sent]:
        """Play a body/head motion once (nod, shake, wave …)."""
        motion = name.strip().lower()
        if motion not in cfg.motions:
            raise _suggest(motion, cfg.motions, "motion")
        return send(MotionEvent(name=motion, intensity=intensity))

    @mcp.tool(annotations=WRITE)
    async def character_gaze(
        x: Annotated[float, Field(ge=-1.0, le=1.0, description="-1 left … 1 right.")],
        y: Annotated[float, Field(ge=-1.0, le=1.0, description="-1 down … 1 up.")],
    ) -> Annotated[CallToolResult, Sent]:
        """Look somewhere: (0, 0) is straight at the viewer."""
        return send(GazeEvent(x=x, y=y))

    @mcp.tool(annotations=WRITE)
    async def character_state(
        state: Annotated[str, Field(max_length=32, description="One of: " + ", ".join(STATES) + ".",
                                    json_schema_extra={"enum": list(STATES)})],
    ) -> Annotated[CallToolResult, Sent]:
        """Set the conversational state: idle, listening, thinking or speaking."""
        value = state.strip().lower()
        if value not in STATES:
            raise _suggest(value, STATES, "state")
        return send(StateEvent(state=value))  # type: ignore[arg-type]

    @mcp.tool(annotations=WRITE)
    async def character_speak(
        text: Annotated[str, Field(description="What the character says; [happy]-style or <|ACT {...}|> tags "
                                               "become expressions at that point.")],
        audio: Annotated[str | None, Field(description="Optional: the spoken audio (WAV/FLAC/OGG, base64); "
                                                       "the mouth follows it. Without it timing is estimated.")] = None,
        audio_ref: Annotated[str | None, Field(max_length=2000, description="Where renderers can play the audio.")] = None,
    ) -> Annotated[CallToolResult, SpeakResult]:
        """Speak: lip-sync timeline and timed expressions go to the renderers; returns the clean text."""
        if len(text) > cfg.max_text:
            raise UserError(f"The text is {len(text):,} characters; the limit is {cfg.max_text:,}. "
                            "Send it in several calls, sentence by sentence.")
        if not text.strip():
            raise UserError("The text is empty.")
        decoded = _decode_audio(audio, cfg.max_audio_seconds) if audio else None

        def plan() -> SpeechPlan:
            return plan_speech(text, decoded, cfg.voice, audio_ref)

        try:
            speech = await anyio.to_thread.run_sync(plan)
        except espeak.EspeakMissing as exc:
            raise UserError(f"{exc}; it is needed for visemes.") from None
        performer.speak(speech)
        ev = speech.speech
        result = SpeakResult(
            utterance_id=speech.utterance_id, text=ev.text, source=speech.source, duration_ms=ev.duration_ms,
            frames=len(ev.mouth), visemes=len(ev.visemes), dropped_tags=speech.dropped_tags,
            expressions=[TimedEmotion(t_ms=t.t_ms, emotion=t.event.emotion, intensity=t.event.intensity)
                         for t in speech.expressions],
            renderers=hub.stats()["renderers"])
        return rendered(result, render_speak(result))

    @mcp.tool(annotations=WRITE)
    async def character_interrupt() -> Annotated[CallToolResult, InterruptResult]:
        """Stop speaking now: pending mouth and expression events are cancelled."""
        interrupted, cancelled = performer.interrupt()
        result = InterruptResult(interrupted=interrupted, cancelled=cancelled, seq=hub.published)
        return rendered(result, render_interrupt(result))

    @mcp.tool(annotations=WRITE)
    async def character_set_param(
        name: Annotated[str, Field(max_length=64, description="One of: " + ", ".join(cfg.params) + ".")],
        value: Annotated[float, Field(description="Within the parameter's range (see the error if not).")],
    ) -> Annotated[CallToolResult, Sent]:
        """Set a low-level face/body parameter (mouth_open, eye_open, head_x …); it stays until changed."""
        key = name.strip().lower()
        if key not in cfg.params:
            raise _suggest(key, list(cfg.params), "parameter")
        lo, hi = cfg.params[key]
        if not lo <= value <= hi:
            raise UserError(f"{key} must be between {lo} and {hi}; got {value}.")
        return send(ParamEvent(name=key, value=value))

    @mcp.tool(annotations=READ_ONLY)
    async def character_status() -> Annotated[CallToolResult, StatusResult]:
        """Renderers connected, adapters and their health, recent events, coalesced counts."""
        stats = hub.stats()
        result = StatusResult(
            renderers=stats["renderers"], published=stats["published"], coalesced=stats["coalesced"],
            disconnected_slow=stats["disconnected_slow"], speaking=performer.current, state=hub.snapshot(),
            subscribers=stats["subscribers"], adapters=[AdapterHealth(**a.health()) for a in adapters],
            last_events=stats["last_events"])
        return rendered(result, render_status(result))

    @mcp.resource("character://state", name="character_state", mime_type="application/json",
                  description="The character's current expression, state, gaze and parameters.")
    def current_state() -> str:
        return json.dumps({**hub.snapshot(), "speaking": performer.current}, default=str)

    async def startup() -> None:
        for adapter in adapters:
            adapter.start()

    async def shutdown() -> None:
        await performer.aclose()
        for adapter in adapters:
            await adapter.stop()

    def health() -> dict[str, object]:
        return {"renderers": hub.stats()["renderers"], "adapters": {a.name: a.connected for a in adapters}}

    return ServerSpec(name="character", mcp=mcp, routes=routes(hub), public=tuple(PUBLIC.values()), startup=startup,
                      shutdown=shutdown, health=health)
