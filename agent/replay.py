"""`alphaavatar agent replay CONFIG RECORDING.wav [--out FILE.jsonl]`: the voice agent on a recording.

The recording plays into the session as if from the microphone, at the pace of real time: the
configured VAD, STT, LLM and TTS and our MCP servers do the rest, exactly as in a room. For every
utterance heard, one JSON object: `start` and `end` (seconds in the recording), `speaker`
(`user_id`, `name`, `decision`), `present` (user ids, `someone` for anyone not recognised),
`text`, `addressed` with `why`, and `reply` (null when the avatar stayed quiet); a turn that held
two voices gives one object per voice. Several recordings are several participants' microphones
(each named by its file name), heard one at a time as in a room (`agent.floor`), and each object
says whose (`participant`). It is how a group conversation is tested without a LiveKit server.

`--next` starts another conversation: `A.wav --next B.wav` replays A, then B in a session of its
own (nothing of A is in B but what the servers keep), through one connection to each MCP server,
so the servers start and load their models once. Each line then also names its `recording`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
import uuid
import wave
from pathlib import Path
from typing import Any

import numpy as np
from livekit import rtc
from livekit.agents import utils
from livekit.agents.voice import io
from livekit.agents.voice.events import UserStateChangedEvent

from .config import ConfigError, PipelineConfig
from .config_file import load_config
from .floor import Floor
from .hearing import Heard
from .mcp_sessions import McpHub
from .pipeline import build_runtime, start_hub

log = logging.getLogger(__name__)

FRAME_S = 0.01  # 10 ms frames, as a microphone delivers them
TAIL_S = 3.0  # silence after the recording, so its last turn ends
SETTLE_S = 120.0  # the last reply may take this long


class Recording(io.AudioInput):
    """A WAV file as the session's microphone, played at the pace of real time."""

    def __init__(self, samples: np.ndarray, rate: int):
        super().__init__(label="recording")
        self.samples, self.rate = samples, rate
        self.position = 0.0  # seconds of the recording played so far
        self._frames = utils.aio.Chan[rtc.AudioFrame]()

    async def __anext__(self) -> rtc.AudioFrame:
        return await self._frames.__anext__()

    async def play(self) -> None:
        step = int(self.rate * FRAME_S)
        audio = np.concatenate([self.samples, np.zeros(int(self.rate * TAIL_S), dtype=np.int16)])
        started = time.perf_counter()
        for i in range(0, len(audio), step):
            chunk = audio[i:i + step]
            self._frames.send_nowait(rtc.AudioFrame(chunk.tobytes(), self.rate, 1, len(chunk)))
            self.position = min((i + len(chunk)) / self.rate, len(self.samples) / self.rate)
            await asyncio.sleep(max(0.0, started + (i + step) / self.rate - time.perf_counter()))


def onset(samples: np.ndarray, rate: int, at: float, rising: bool) -> float:
    """The last start (or end) of sound in the recording at or before `at` seconds: when the VAD
    runs late on a busy machine its events come late, the recording itself says when speech began."""
    hop = int(rate * 0.02)
    frames = samples[: int(at * rate) // hop * hop].astype(np.float32).reshape(-1, hop)
    if not len(frames):
        return at
    rms = np.sqrt((frames ** 2).mean(axis=1))
    loud = rms > 0.1 * max(float(np.percentile(np.abs(samples.astype(np.float32)), 99)), 1.0)
    edges = np.flatnonzero(loud[1:] & ~loud[:-1]) + 1 if rising else np.flatnonzero(~loud[1:] & loud[:-1]) + 1
    return float(edges[-1] * hop / rate) if len(edges) else at


class PlayedAtOnce(io.AudioOutput):
    """The session's speaker without a room: each segment counts as played as soon as it is given."""

    def __init__(self, keep: bool = False) -> None:
        super().__init__(label="played-at-once", capabilities=io.AudioOutputCapabilities(pause=False))
        self.keep = keep
        self.frames: list[rtc.AudioFrame] = []
        self._segment = 0.0
        self._playing = False

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        if not self._playing:
            self._playing = True
            self.on_playback_started(created_at=time.time())
        if self.keep:
            self.frames.append(frame)
        self._segment += frame.duration

    def _finish(self, interrupted: bool) -> None:
        if self._playing:
            self._playing, played, self._segment = False, self._segment, 0.0
            self.on_playback_finished(playback_position=played, interrupted=interrupted)

    def flush(self) -> None:
        super().flush()
        self._finish(False)

    def clear_buffer(self) -> None:
        self._finish(True)


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """16-bit PCM WAV as mono int16 samples and their rate; a clear error for anything else."""
    try:
        with wave.open(str(path), "rb") as w:
            if w.getsampwidth() != 2:
                raise ConfigError(f"{path}: 16-bit PCM WAV expected (this one has {8 * w.getsampwidth()}-bit samples)")
            data = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
            channels, rate = w.getnchannels(), w.getframerate()
    except (wave.Error, EOFError) as exc:
        raise ConfigError(f"{path}: not a WAV file ({exc})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if channels > 1:
        data = data.reshape(-1, channels).mean(axis=1).astype(np.int16)
    return data, rate


def line(heard: Heard, start: float, end: float) -> dict[str, Any]:
    """One utterance as the replay writes it."""
    prep, speaker = heard.prep, heard.prep.speaker
    who = prep.speaker_id
    return {"start": round(start, 2), "end": round(end, 2),
            "speaker": {"user_id": who, "name": speaker.name if speaker and who else None,
                        "decision": speaker.decision if speaker else "unknown"},
            "present": prep.audience, "text": heard.text, "addressed": heard.addressed.yes,
            "why": heard.addressed.why, "reply": heard.reply if heard.addressed.yes else None}


def microphones(recordings: list[Path]) -> dict[str, Recording]:
    """Each recording as a participant's microphone, named by its file name; one rate for all."""
    if not recordings:
        raise ConfigError("replay needs a recording")
    mics = {path.stem: Recording(*read_wav(path)) for path in recordings}
    if len(mics) != len(recordings):
        raise ConfigError("each recording is one participant, named by its file name: two have the same name")
    if len({m.rate for m in mics.values()}) > 1:
        raise ConfigError("the recordings must have one sample rate: " + ", ".join(f"{k} {m.rate} Hz" for k, m in mics.items()))
    return mics


async def replay(config: PipelineConfig, recordings: list[Path], hub: McpHub) -> list[dict[str, Any]]:
    """Play the recordings to the agent through `hub`'s servers (several: several participants); the
    heard utterances, in order."""
    mics = microphones(recordings)
    silence = float((config.vad.options() if config.vad else {}).get("min_silence_duration", 0.55))
    runtime = build_runtime(config, hub, voice=True, session_id=f"replay-{uuid.uuid4().hex[:8]}")
    floor = Floor() if len(mics) > 1 else None
    if floor is not None:
        for identity, track in mics.items():
            floor.add(identity, track)
        runtime.agent.view.floor = floor
    first = next(iter(mics.values()))
    runtime.session.input.audio = floor or first
    runtime.session.output.audio = PlayedAtOnce()
    spans: list[tuple[float, float]] = []  # speech heard since the last utterance was decided
    opened: list[float] = []
    heard: list[tuple[Heard, float, float]] = []
    participants: list[str | None] = []  # whose microphone each utterance came from

    def mic() -> Recording:
        return mics.get(floor.holder or "", first) if floor is not None else first

    def on_user_state(ev: UserStateChangedEvent) -> None:
        m = mic()
        if ev.new_state == "speaking":
            opened.append(onset(m.samples, m.rate, m.position, rising=True))
        elif ev.old_state == "speaking" and opened:
            spans.append((opened.pop(), onset(m.samples, m.rate, max(m.position - silence, 0.0), rising=False)))

    turn: list[float] = []  # the start and end of the turn being decided

    def on_heard(h: Heard) -> None:
        if h.part == 0:
            turn[:] = (spans[0][0], spans[-1][1]) if spans else (mic().position, mic().position)
            spans.clear()
        start, end = turn
        if h.within is not None:  # one voice's part of a turn that held two
            start, end = start + h.within[0], min(end, start + h.within[1])
        heard.append((h, start, end))
        participants.append(floor.holder if floor is not None else None)

    runtime.session.on("user_state_changed", on_user_state)
    runtime.agent.hearing.on_heard = on_heard
    try:
        await runtime.warm()
        await runtime.session.start(runtime.agent, record=False)
        await asyncio.gather(*(m.play() for m in mics.values()))
        await _settle(runtime.session, heard)
    finally:
        if floor is not None:
            await floor.aclose()
        await runtime.aclose()
    lines = [line(h, start, end) for h, start, end in heard]
    if floor is not None:
        for ln, who in zip(lines, participants, strict=True):
            ln["participant"] = who
    return lines


async def conversations(config: PipelineConfig, runs: list[list[Path]]) -> list[list[dict[str, Any]]]:
    """Each conversation (its participants' recordings) in a session of its own, one after another,
    through one hub; the lines of each."""
    if config.stt is None or config.tts is None:
        raise ConfigError("replay needs 'stt:' and 'tts:' sections in the config")
    for run in runs:
        microphones(run)  # a bad file is named before any server starts
    hub, _ = await start_hub(config)
    try:
        return [await replay(config, run, hub) for run in runs]
    finally:
        await hub.aclose()


async def _settle(session: Any, heard: list[tuple[Heard, float, float]]) -> None:
    """Wait until the last turn is decided and answered, and the agent listens again."""
    deadline = time.monotonic() + SETTLE_S
    quiet_since: float | None = None
    while time.monotonic() < deadline:
        waiting = any(h.addressed.yes and h.reply is None for h, _, _ in heard[-1:])
        if session.agent_state == "listening" and session.user_state != "speaking" and not waiting:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= 1.5:
                return
        else:
            quiet_since = None
        await asyncio.sleep(0.1)
    log.warning("replay: the agent was still busy %.0f s after the recording ended", SETTLE_S)


def main(config_path: Path, overrides: list[str], extra: list[str]) -> int:
    """The `alphaavatar agent replay` command: RECORDING.wav… [--next RECORDING.wav…]… [--out FILE.jsonl]
    after the config."""
    args = list(extra)
    out: Path | None = None
    if "--out" in args:
        at = args.index("--out")
        if at + 1 >= len(args):
            print("--out needs a file name", file=sys.stderr)
            return 2
        out = Path(args[at + 1])
        del args[at:at + 2]
    runs: list[list[str]] = [[]]
    for a in args:
        if a == "--next":
            runs.append([])
        else:
            runs[-1].append(a)
    if not all(runs):
        print("usage: alphaavatar agent replay CONFIG RECORDING.wav [MORE.wav…] [--next RECORDING.wav…]… "
              "[--out FILE.jsonl]", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(config_path, overrides)
        heard = asyncio.run(conversations(config, [[Path(a) for a in run] for run in runs]))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    lines = heard[0] if len(runs) == 1 else [{**ln, "recording": run[0]} for run, got in zip(runs, heard, strict=True)
                                             for ln in got]
    text = "".join(json.dumps(ln, ensure_ascii=False) + "\n" for ln in lines)
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
    return 0
