"""Persona server settings: `ALPHAAVATAR_PERSONA_*` environment variables (or `.env`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

WESPEAKER_FILE = "wespeaker/voxceleb_resnet34_LM.onnx"


class PersonaSettings(BaseSettings):
    """Which models identify people, and the limits on what a tool accepts; all optional."""

    model_config = SettingsConfigDict(env_prefix="ALPHAAVATAR_PERSONA_", env_file=".env",
                                      env_file_encoding="utf-8", extra="ignore")

    voice_model: str = Field(
        default="resemblyzer",
        description="'resemblyzer' (weights in the wheel), 'wespeaker' (the model `alphaavatar download-files` "
        "fetched), or the path of a wespeaker-format ONNX model (80-dim fbank in, embedding out).",
    )
    voice_threshold: float | None = Field(
        default=None, description="Override the 'known' cosine threshold for long (≥ 2 s) speech."
    )
    face_model: str = Field(default="dlib", description="'dlib' or 'insightface' (buffalo_l from insightface_root).")
    insightface_root: Path | None = Field(
        default=None, description="Folder holding buffalo_l's det_10g.onnx and w600k_r50.onnx (or buffalo_l/ in it)."
    )
    face_threshold: float | None = Field(default=None, description="Override the 'known' face cosine threshold.")

    max_audio_seconds: float = Field(default=60.0, gt=0, le=600)
    max_audio_bytes: int = Field(default=20_000_000, gt=0)
    min_speech_seconds: float = Field(default=0.5, gt=0, le=5)
    max_image_bytes: int = Field(default=20_000_000, gt=0)
    max_image_pixels: int = Field(default=40_000_000, gt=0, description="Larger images are refused (bombs).")
    max_adapted: int = Field(default=10, ge=0, le=100, description="Adapted voice samples kept per user.")


def models_dir(home: Path) -> Path:
    """Where `alphaavatar download-files` puts model files."""
    return home / "models"
