"""Recorded group conversations of real FSDD voices, for `alphaavatar agent replay` (tests, bench)."""

from __future__ import annotations

import io
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from livekit import rtc
from scipy.signal import resample_poly

from tests.datasets import RATE, fsdd, wav_b64
from tests.support import ALPHAAVATAR, ROOT, ok, server_env, stdio_session

REC_RATE = 16_000
ENROLLED = ("george", "jackson", "lucas")
CONFIG = """avatar: {{id: default, name: Alpha, instructions: "You are Alpha, a concise assistant."}}
llm: {{provider: openai, model: fake, base_url: "{url}", api_key: k}}
stt: {{provider: openai, model: whisper-1, base_url: "{url}", api_key: k}}
tts: {{provider: openai, model: tts-1, response_format: pcm, base_url: "{url}", api_key: k}}
vad: {{provider: silero, min_silence_duration: 0.8}}
mcp_servers: [memory, persona, character]
"""
Turn = tuple[str, str, bool]  # speaker, what they say, spoken to the avatar


class Script:
    """What the fake STT hears: the script's lines in order, or, once `clips` are given, the words of
    each recorded clip the audio holds (most of it), in the order they are heard."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.heard = 0
        self.clips: list[tuple[np.ndarray, str]] = []  # (samples at REC_RATE, its words)

    def transcribe(self, wav: bytes) -> str:
        if self.clips:
            return self.words_in(wav)
        text = self.lines[self.heard] if self.heard < len(self.lines) else ""
        self.heard += 1
        return text

    def words_in(self, wav: bytes) -> str:
        audio, rate = sf.read(io.BytesIO(wav), dtype="float32")
        audio = audio.mean(axis=1) if audio.ndim > 1 else audio
        if rate != REC_RATE:
            audio = np.interp(np.arange(int(len(audio) * REC_RATE / rate)) / REC_RATE, np.arange(len(audio)) / rate, audio)
        found = [(at, text) for clip, text in self.clips if (at := _place(audio, clip)) is not None]
        return " ".join(text for _, text in sorted(found))


def _place(audio: np.ndarray, clip: np.ndarray) -> int | None:
    """Where `clip` is in `audio`, when the audio holds at least half of the clip's energy there."""
    n = len(audio) + len(clip)
    size = 1 << (n - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(audio, size) * np.conj(np.fft.rfft(clip, size)), size)
    corr = np.concatenate([corr[-(len(clip) - 1):], corr[:len(audio)]]) if len(clip) > 1 else corr[:len(audio)]
    best = int(np.argmax(corr))
    return best - (len(clip) - 1) if corr[best] >= 0.5 * float(clip @ clip) else None


async def enroll(env: dict[str, str], utts: dict[str, list[np.ndarray]]) -> None:
    """george, jackson and lucas by voice (their first three utterances), with their names."""
    async with stdio_session("persona", env) as persona:
        for who in ENROLLED:
            await ok(persona, "user_create", {"user_id": who, "name": who.title()})
            for x in utts[who][:3]:
                await ok(persona, "speaker_enroll", {"user_id": who, "audio": wav_b64(x)})


@dataclass(frozen=True)
class Stage:
    """Where a replay runs: its servers' environment, the FSDD utterances, and the replay's config."""

    env: dict[str, str]
    utts: dict[str, list[np.ndarray]]
    config: Path


async def stage(home: Path, url: str) -> Stage:
    """A home whose persona server knows george, jackson and lucas by voice, and a replay config for
    the fake OpenAI-compatible server at `url`: what every replayed conversation starts from."""
    env = server_env(home)
    utts = fsdd(digits=6)
    await enroll(env, utts)
    config = home / "replay.yaml"
    config.write_text(CONFIG.format(url=url))
    return Stage(env, utts, config)


async def own_memories(env: dict[str, str]) -> dict[str, str]:
    """Each enrolled user's own memories after a replay, as JSON text to look for words in."""
    async with stdio_session("memory", env) as memory:
        return {who: json.dumps((await ok(memory, "memory_list", {"user_id": who, "scope": "user",
                                                                    "limit": 100}))["results"])
                for who in ENROLLED}


def _timeline(turns: list[Turn], utts: dict[str, list[np.ndarray]], used: dict[str, int], joined: frozenset[int],
              script: Script | None) -> tuple[list[tuple[int, np.ndarray]], int, list[float]]:
    """Where each turn's clip goes (sample offset, clip), the total length, and each start in seconds."""
    silence = int(1.6 * REC_RATE)
    placed: list[tuple[int, np.ndarray]] = []
    t = silence
    for i, (speaker, text, _) in enumerate(turns):
        x = utts[speaker][used[speaker]]
        used[speaker] += 1
        x = resample_poly(x, REC_RATE, RATE)  # band-limited: interpolation's images above 4 kHz change the voice
        x = (0.8 * x / max(1e-6, float(np.abs(x).max()))).astype(np.float32)
        if i in joined:  # back to back with the turn before: a short pause instead of the silence
            t -= silence - int(0.15 * REC_RATE)
        placed.append((t, x))
        t += len(x) + silence
        if script is not None:
            script.clips.append((x.astype(np.float64), text))
    return placed, t, [at / REC_RATE for at, _ in placed]


def recording(turns: list[Turn], utts: dict[str, list[np.ndarray]], used: dict[str, int], path: Path,
              joined: frozenset[int] = frozenset(), script: Script | None = None) -> list[float]:
    """Each speaker's next utterance, 1.6 s of silence around each (0.15 s before the turns in
    `joined`: one turn with the one before, too short a pause for the VAD); the start of each, in
    seconds. `script` hears each clip's words (a content-reading fake STT)."""
    placed, total, starts = _timeline(turns, utts, used, joined, script)
    audio = np.zeros(total, dtype=np.float32)
    for at, x in placed:
        audio[at: at + len(x)] = x
    sf.write(path, audio, REC_RATE, subtype="PCM_16")
    return starts


def streams(turns: list[Turn], owners: list[str], utts: dict[str, list[np.ndarray]], used: dict[str, int],
            folder: Path, script: Script | None = None) -> tuple[list[Path], list[float]]:
    """The conversation as each participant's own microphone (`owners[i]`: whose stream turn i is on;
    silence on the others meanwhile), one WAV each named `<participant>.wav`; and each turn's start."""
    placed, total, starts = _timeline(turns, utts, used, frozenset(), script)
    audio = {who: np.zeros(total, dtype=np.float32) for who in owners}
    for (at, x), who in zip(placed, owners, strict=True):
        audio[who][at: at + len(x)] = x
    paths = []
    for who, samples in audio.items():
        sf.write(folder / f"{who}.wav", samples, REC_RATE, subtype="PCM_16")
        paths.append(folder / f"{who}.wav")
    return paths, starts


def _run_replay(config: Path, args: list[str], out: Path, env: dict[str, str]) -> list[dict[str, Any]]:
    proc = subprocess.run([ALPHAAVATAR, "agent", "replay", str(config), *args, "--out", str(out)],
                          capture_output=True, text=True, timeout=900,
                          env={**env, "PYTHONPATH": os.environ.get("PYTHONPATH", str(ROOT))})
    if proc.returncode != 0:
        raise AssertionError(f"replay failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return [json.loads(ln) for ln in out.read_text().splitlines() if ln.strip()]


def replay(config: Path, wav: Path | list[Path], env: dict[str, str]) -> list[dict[str, Any]]:
    """`alphaavatar agent replay` in its own process (several WAVs: several participants); its lines."""
    wavs = wav if isinstance(wav, list) else [wav]
    return _run_replay(config, [str(w) for w in wavs], wavs[0].with_suffix(".jsonl"), env)


def replay_several(config: Path, wavs: list[Path], env: dict[str, str]) -> list[list[dict[str, Any]]]:
    """`alphaavatar agent replay A.wav --next B.wav …`: one conversation per recording in one process
    (the servers started once); the lines of each recording."""
    args = [a for w in wavs for a in ("--next", str(w))][1:]
    by: dict[str, list[dict[str, Any]]] = {str(wav): [] for wav in wavs}
    for ln in _run_replay(config, args, wavs[0].with_suffix(".jsonl"), env):
        by[ln.pop("recording")].append(ln)
    return list(by.values())


def line_at(lines: list[dict[str, Any]], start: float) -> dict[str, Any] | None:
    """The line of the utterance that started at `start` (within 1.5 s), if any."""
    line = min(lines, key=lambda d: abs(d["start"] - start), default=None)
    return line if line is not None and abs(line["start"] - start) < 1.5 else None


def turn_wav(*clips: np.ndarray) -> bytes:
    """One turn's audio as the agent keeps it (16 kHz WAV): the clips back to back, a little silence around."""
    gap, pre = np.zeros(int(0.15 * REC_RATE)), np.zeros(int(0.6 * REC_RATE))
    x = np.concatenate([pre, *(c for clip in clips for c in (resample_poly(clip, REC_RATE, RATE), gap)), pre])
    x = (0.8 * x / np.abs(x).max() * 32767).astype(np.int16)
    return rtc.AudioFrame(x.tobytes(), REC_RATE, 1, len(x)).to_wav_bytes()
