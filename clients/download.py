"""`alphaavatar download-files`: fetch the optional wespeaker ONNX speaker model for the persona
server (the defaults need nothing: resemblyzer and dlib weights ship in their wheels)."""

from __future__ import annotations

from pathlib import Path

import httpx

from mcp_servers.persona.config import WESPEAKER_FILE, models_dir

# The same file (wespeaker ResNet34-LM, VoxCeleb, Apache-2.0) from its publishers, tried in order.
WESPEAKER_URLS = (
    "https://huggingface.co/Wespeaker/wespeaker-voxceleb-resnet34-LM/resolve/main/voxceleb_resnet34_LM.onnx",
    "https://huggingface.co/chengdongliang/wespeaker/resolve/main/voxceleb_resnet34_LM.onnx",
)


class DownloadError(RuntimeError):
    """Nothing usable could be fetched; the message says what failed and what to do instead."""


def _fetch(url: str, part: Path, timeout: float) -> None:
    with httpx.stream("GET", url, follow_redirects=True, timeout=timeout) as resp:
        resp.raise_for_status()
        with part.open("wb") as fh:
            for chunk in resp.iter_bytes(1 << 20):
                fh.write(chunk)


def download_wespeaker(home: Path, urls: tuple[str, ...] = WESPEAKER_URLS, timeout: float = 60.0) -> Path:
    """Fetch the model into `home/models/` (kept only if it loads as a wespeaker model); its path."""
    from mcp_servers.persona.voice_wespeaker import WeSpeaker

    dest = models_dir(home) / WESPEAKER_FILE
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_suffix(".part")
    failures = []
    for url in urls:
        try:
            _fetch(url, part, timeout)
            WeSpeaker(part)  # a real wespeaker model: (batch, frames, 80) fbank in, an embedding out
        except Exception as exc:  # network, HTTP status, or not a usable model: try the next source
            failures.append(f"{url}: {type(exc).__name__}: {str(exc)[:200]}")
            part.unlink(missing_ok=True)
            continue
        part.replace(dest)
        return dest
    raise DownloadError(
        "Could not download the wespeaker model (offline, or the sources moved):\n  " + "\n  ".join(failures)
        + f"\nCopy a wespeaker-format ONNX file to {dest}, or set ALPHAAVATAR_PERSONA_VOICE_MODEL to its path. "
        "The persona server works without it (resemblyzer is the default)."
    )
