"""Files that arrive in tool arguments: base64 (or a data: URI), or a path under the allowed roots.

Both forms are bounded in bytes before anything is decoded, so a huge argument costs nothing.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from urllib.parse import unquote, urlparse

from mcp_servers.core.errors import UserError
from mcp_servers.core.files import allowed_file
from mcp_servers.core.settings import Settings

MAX_PATH = 4096


def _as_path(value: str) -> Path | None:
    """The path `value` names, if it is one (a base64 JPEG also starts with '/', so it must exist)."""
    if len(value) > MAX_PATH or "\n" in value:
        return None
    if value.startswith("file://"):
        return Path(unquote(urlparse(value).path))
    path = Path(value).expanduser()
    if value.startswith("~") or (path.is_absolute() and path.exists()):
        return path
    return None


def load_bytes(value: str, what: str, settings: Settings, max_bytes: int) -> bytes:
    """The bytes of a file argument; a clear UserError for anything else."""
    value = value.strip()
    if not value:
        raise UserError(f"The {what} is empty.")
    path = _as_path(value)
    if path is not None:
        return allowed_file(path, settings, max_bytes, f" Or send the {what} as base64.").read_bytes()
    if value.startswith("data:"):
        value = value.partition(",")[2]
    if len(value) > (max_bytes * 4) // 3 + 8:
        raise UserError(f"The {what} is larger than the {max_bytes / 1e6:.0f} MB limit.")
    try:
        data = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise UserError(
            f"The {what} is neither base64 nor a readable file path (send the file's bytes as base64)."
        ) from None
    if not data:
        raise UserError(f"The {what} is empty.")
    return data


def sniff(data: bytes) -> str | None:
    """The kind of a few common non-audio / image files, to name them in errors."""
    signatures = {
        b"\x89PNG": "a PNG image",
        b"\xff\xd8\xff": "a JPEG image",
        b"GIF8": "a GIF image",
        b"%PDF": "a PDF document",
        b"PK\x03\x04": "a ZIP archive",
        b"ID3": "an MP3 file",
        b"\x1aE\xdf\xa3": "a Matroska/WebM file",
    }
    for magic, kind in signatures.items():
        if data.startswith(magic):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "a WebP image"
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "a WAV file"
    if data[:4] == b"fLaC":
        return "a FLAC file"
    if data[:4] == b"OggS":
        return "an OGG file"
    return None
