"""Recorded group conversations of real FSDD voices, for `alphaavatar agent replay` (tests, bench)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from tests.datasets import RATE, wav_b64
from tests.support import ALPHAAVATAR, ROOT, ok, stdio_session

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
    """What the fake STT hears, in order."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.heard = 0

    def transcribe(self, wav: bytes) -> str:
        text = self.lines[self.heard] if self.heard < len(self.lines) else ""
        self.heard += 1
        return text


async def enroll(env: dict[str, str], utts: dict[str, list[np.ndarray]]) -> None:
    """george, jackson and lucas by voice (their first three utterances), with their names."""
    async with stdio_session("persona", env) as persona:
        for who in ENROLLED:
            await ok(persona, "user_create", {"user_id": who, "name": who.title()})
            for x in utts[who][:3]:
                await ok(persona, "speaker_enroll", {"user_id": who, "audio": wav_b64(x)})


def recording(turns: list[Turn], utts: dict[str, list[np.ndarray]], used: dict[str, int], path: Path) -> list[float]:
    """Each speaker's next utterance, 1.6 s of silence around each; the start of each, in seconds."""
    silence = np.zeros(int(1.6 * REC_RATE), dtype=np.float32)
    parts, starts, t = [silence], [], len(silence) / REC_RATE
    for speaker, _, _ in turns:
        x = utts[speaker][used[speaker]]
        used[speaker] += 1
        x = np.interp(np.arange(int(len(x) * REC_RATE / RATE)) / REC_RATE, np.arange(len(x)) / RATE, x)
        x = 0.8 * x / max(1e-6, float(np.abs(x).max()))
        parts += [x.astype(np.float32), silence]
        starts.append(t)
        t += (len(x) + len(silence)) / REC_RATE
    sf.write(path, np.concatenate(parts), REC_RATE, subtype="PCM_16")
    return starts


def replay(config: Path, wav: Path | list[Path], env: dict[str, str]) -> list[dict[str, Any]]:
    """`alphaavatar agent replay` in its own process; its lines."""
    wavs = wav if isinstance(wav, list) else [wav]
    out = wavs[0].with_suffix(".jsonl")
    proc = subprocess.run([ALPHAAVATAR, "agent", "replay", str(config), *map(str, wavs), "--out", str(out)],
                          capture_output=True, text=True, timeout=900,
                          env={**env, "PYTHONPATH": os.environ.get("PYTHONPATH", str(ROOT))})
    if proc.returncode != 0:
        raise AssertionError(f"replay failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return [json.loads(ln) for ln in out.read_text().splitlines() if ln.strip()]


def replay_several(config: Path, wavs: list[Path], env: dict[str, str]) -> list[list[dict[str, Any]]]:
    """`alphaavatar agent replay` of several recordings in one process (one conversation each, the
    servers started once); the lines of each recording."""
    by: dict[str, list[dict[str, Any]]] = {str(wav): [] for wav in wavs}
    for ln in replay(config, wavs, env):
        by[ln.pop("recording")].append(ln)
    return list(by.values())


def line_at(lines: list[dict[str, Any]], start: float) -> dict[str, Any] | None:
    """The line of the utterance that started at `start` (within 1.5 s), if any."""
    line = min(lines, key=lambda d: abs(d["start"] - start), default=None)
    return line if line is not None and abs(line["start"] - start) < 1.5 else None
