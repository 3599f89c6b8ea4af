"""Character server settings: `ALPHAAVATAR_CHARACTER_*` environment variables (or `.env`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MOTIONS = ["nod", "shake", "wave", "bow", "tilt", "bounce"]
DEFAULT_PARAMS: dict[str, tuple[float, float]] = {
    "mouth_open": (0.0, 1.0), "mouth_smile": (-1.0, 1.0), "eye_open": (0.0, 1.0), "brow": (-1.0, 1.0),
    "head_x": (-1.0, 1.0), "head_y": (-1.0, 1.0), "head_z": (-1.0, 1.0), "body_x": (-1.0, 1.0),
    "blush": (0.0, 1.0),
}


class CharacterSettings(BaseSettings):
    """What the character server drives besides its own hub; everything optional."""

    model_config = SettingsConfigDict(env_prefix="ALPHAAVATAR_CHARACTER_", env_file=".env",
                                      env_file_encoding="utf-8", extra="ignore")

    queue_size: int = Field(default=512, ge=16, le=100_000,
                            description="Pending never-dropped events per renderer before it is disconnected.")
    voice: str = Field(default="en-us", description="espeak-ng voice used for visemes.")
    max_text: int = Field(default=5000, description="Longest text character_speak accepts.")
    max_audio_seconds: float = Field(default=120.0, description="Longest audio character_speak accepts.")
    motions: list[str] = Field(default_factory=lambda: list(DEFAULT_MOTIONS))
    params: dict[str, tuple[float, float]] = Field(default_factory=lambda: dict(DEFAULT_PARAMS),
                                                   description='Parameter ranges: JSON {"name": [min, max]}.')

    airi_url: str | None = Field(default=None, description="AIRI server-runtime WebSocket, e.g. ws://localhost:6121/ws; unset = off.")
    airi_token: SecretStr | None = Field(default=None, description="AIRI AUTHENTICATION_TOKEN, if its server sets one.")
    vts_url: str | None = Field(default=None, description="VTube Studio API, e.g. ws://localhost:8001; unset = off.")
    vts_mapping: Path | None = Field(default=None, description="JSON file overriding the VTube Studio mapping.")
