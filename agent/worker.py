"""The LiveKit worker: `alphaavatar agent dev|start|console CONFIG.yaml` (and `alphaavatar dev`).

The config is validated here, before the worker starts, so a bad one fails at once with a
clear message. Job processes read it back from the environment (they are fresh processes).
`LIVEKIT_URL`, `LIVEKIT_API_KEY` and `LIVEKIT_API_SECRET` are read by the livekit-agents CLI.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from livekit import rtc
from livekit.agents import JobContext, JobProcess
from livekit.agents.voice.room_io import RoomOptions
from livekit.agents.voice.room_io._input import _ParticipantAudioInputStream
from livekit.plugins import openai, silero  # noqa: F401  (plugins register on the main thread)

from .config import ConfigError, PipelineConfig
from .config_file import load_config
from .floor import Floor
from .pipeline import Runtime, build_runtime, build_vad, start_hub

CONFIG_ENV = "ALPHAAVATAR_AGENT_CONFIG"
OVERRIDES_ENV = "ALPHAAVATAR_AGENT_SET"
MODES = ("dev", "start", "console", "connect")
ROOM_RATE = 24_000  # what RoomIO asks of a participant's audio by default
_BACKGROUND: set[asyncio.Task[None]] = set()


def _config() -> PipelineConfig:
    return load_config(os.environ[CONFIG_ENV], json.loads(os.environ.get(OVERRIDES_ENV) or "[]"))


def prewarm(proc: JobProcess) -> None:
    """Load the VAD once per job process (its weights ship in livekit-plugins-silero)."""
    proc.userdata["vad"] = build_vad(_config().vad)


async def entrypoint(ctx: JobContext) -> None:
    config = _config()
    hub, _ = await start_hub(config)
    runtime = build_runtime(config, hub, voice=True, vad=ctx.proc.userdata.get("vad"),
                            session_id=f"{ctx.room.name}-{ctx.job.id}"[-64:])

    async def shutdown() -> None:
        await runtime.aclose()
        await hub.aclose()

    ctx.add_shutdown_callback(shutdown)
    runtime.agent.status.publish_to(ctx.room.local_participant)  # status events for the room's clients
    runtime.character.publish_to(ctx.room.local_participant, config.group.topic)  # the character, for a front end there
    _watch_people(ctx.room, runtime)
    ctx.room.on("track_subscribed", lambda track, _, participant: _watch_video(track, participant, runtime))
    options = RoomOptions()
    if config.group.hear_everyone:  # RoomIO hears one linked participant: the floor hears them all
        floor = Floor()
        runtime.agent.view.floor = floor
        runtime.session.input.audio = floor
        hear_everyone(ctx.room, floor)
        options = RoomOptions(audio_input=False)
    # The servers load their models while the room connects and the first person starts talking.
    await asyncio.gather(runtime.warm(), runtime.session.start(runtime.agent, room=ctx.room, room_options=options))


def hear_everyone(room: rtc.Room, floor: Floor) -> None:
    """Every remote participant's microphone into the floor, from when they connect until they leave.
    Each is livekit's own participant audio input (the one RoomIO uses for its linked participant;
    this version has no public way to have several)."""
    streams: dict[str, _ParticipantAudioInputStream] = {}

    def joined(participant: rtc.RemoteParticipant) -> None:
        if participant.identity in streams:
            return
        stream = _ParticipantAudioInputStream(room, sample_rate=ROOM_RATE, num_channels=1, noise_cancellation=None,
                                              pre_connect_audio_handler=None)
        stream.set_participant(participant.identity)
        streams[participant.identity] = stream
        floor.add(participant.identity, stream)

    def left(participant: rtc.RemoteParticipant) -> None:
        floor.remove(participant.identity)
        if (stream := streams.pop(participant.identity, None)) is not None:
            task = asyncio.ensure_future(stream.aclose())
            _BACKGROUND.add(task)
            task.add_done_callback(_BACKGROUND.discard)

    for participant in room.remote_participants.values():
        joined(participant)
    room.on("participant_connected", joined)
    room.on("participant_disconnected", left)


def _watch_people(room: rtc.Room, runtime: Runtime) -> None:
    """Room participants are present from when they connect until they leave."""
    presence = runtime.hooks.speakers.presence
    for participant in room.remote_participants.values():
        presence.joined(participant.identity)
    room.on("participant_connected", lambda p: presence.joined(p.identity))
    room.on("participant_disconnected", lambda p: presence.left_room(p.identity))


def _watch_video(track: rtc.Track, participant: rtc.RemoteParticipant, runtime: Runtime) -> None:
    """A participant's camera: its frames refine who is speaking (face + voice)."""
    if track.kind != rtc.TrackKind.KIND_VIDEO:
        return

    async def watch() -> None:
        async for event in rtc.VideoStream(track):
            runtime.agent.view.camera.see(event.frame, participant.identity)

    task = asyncio.create_task(watch(), name=f"video:{track.sid}")
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)


def run(mode: str, config_path: Path, overrides: list[str], extra: list[str]) -> None:
    """Validate the config, then hand over to the livekit-agents CLI in `mode`."""
    try:
        _check(mode, config_path, overrides, extra)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None
    os.environ[CONFIG_ENV] = str(config_path.resolve())
    os.environ[OVERRIDES_ENV] = json.dumps(overrides)
    from livekit.agents import WorkerOptions, cli

    sys.argv = ["alphaavatar agent", mode, *extra]
    cli.run_app(WorkerOptions(entrypoint_fnc=entrypoint, prewarm_fnc=prewarm))


def _check(mode: str, config_path: Path, overrides: list[str], extra: list[str]) -> None:
    """Everything that can be wrong before the worker starts, each with what to fix."""
    if mode not in MODES:
        raise ConfigError(f"unknown mode {mode!r}: choose one of {', '.join(MODES)}")
    config = load_config(config_path, overrides)
    missing = [s for s in ("stt", "tts") if getattr(config, s) is None]
    if missing:
        raise ConfigError(f"{config_path}: a voice agent needs {' and '.join(f'{s}:' for s in missing)} "
                          "(see clients/examples/pipeline_openai_airi.yaml)")
    if mode != "console":
        unset = [f"LIVEKIT_{k}" for k, flag in (("URL", "--url"), ("API_KEY", "--api-key"), ("API_SECRET", "--api-secret"))
                 if not os.environ.get(f"LIVEKIT_{k}") and flag not in extra]
        if unset:
            raise ConfigError(f"set {', '.join(unset)} (your LiveKit server or Cloud project) to run "
                              f"`alphaavatar agent {mode}`; `alphaavatar agent console` and `alphaavatar chat` need none")
