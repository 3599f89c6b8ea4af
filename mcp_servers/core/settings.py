"""Settings shared by every server: `ALPHAAVATAR_*` environment variables, `.env`, explicit defaults."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """One place for configuration; every field documents what leaving it unset means."""

    model_config = SettingsConfigDict(
        env_prefix="ALPHAAVATAR_", env_file=".env", env_file_encoding="utf-8", extra="ignore",
        hide_input_in_errors=True,  # a refused token or key is named, never echoed into a log
    )

    home: Path = Field(default=Path("~/.alphaavatar"), description="Data root, one folder per server (the only "
                       "default of it: the CLI exports the resolved root to the agent and the servers it starts).")
    avatar_id: str = Field(default="default", description="The avatar whose memories a server keeps.")
    log_level: str = "INFO"

    # HTTP transports
    token: SecretStr | None = Field(
        default=None, description="Bearer token for HTTP transports; required when bound beyond loopback."
    )
    user_tokens: dict[str, str] = Field(
        default_factory=dict,
        description='Tokens scoped to one user: JSON {"token": "user_id"}. Such a token reads and '
        "writes only that user's data.",
    )
    request_state_key: SecretStr | None = Field(
        default=None, description="A secret of 32+ characters that seals the state of a call waiting for a "
        "person's yes (MCP 2026-07-28), the same on every replica of a server. Unset: derived from the owner token, "
        "or, without one, a key of this process only.",
    )
    request_state_previous_key: SecretStr | None = Field(
        default=None, description="During a key rotation: another key whose sealed states are still opened "
        "(never used to seal). Roll out the new key here first, then swap the two, then drop this one.",
    )
    allowed_hosts: list[str] = Field(
        default_factory=list, description="Extra Host headers accepted (DNS-rebinding protection)."
    )

    # Storage: embedded Qdrant Edge by default, a Qdrant server when QDRANT_URL is set.
    qdrant_url: str | None = Field(default=None, validation_alias=AliasChoices("ALPHAAVATAR_QDRANT_URL", "QDRANT_URL"))
    qdrant_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("ALPHAAVATAR_QDRANT_API_KEY", "QDRANT_API_KEY")
    )

    # Text embeddings: all-MiniLM-L6-v2 on ONNX Runtime, or an OpenAI-compatible endpoint.
    embedder: str = Field(default="local", description="'local' (all-MiniLM-L6-v2, CPU) or 'openai'.")
    embedding_model: str | None = Field(
        default=None, description="The model name for 'openai'; for 'local', a folder with the model's files, used "
        "instead of all-MiniLM-L6-v2 from its package, the Hugging Face cache or the Hub (core/text_weights.py).",
    )
    embedding_dim: int = 384
    embedding_precision: Literal["auto", "fp32", "bf16"] = Field(
        default="auto",
        description="Local embedder: 'auto' runs small batches in fp32 on ONNX Runtime and large ones in bf16 "
        "on torch where the CPU has native bf16 (AVX512-BF16/AMX), each the faster there; 'fp32' is ONNX "
        "Runtime only, 'bf16' torch only. All agree to cosine 0.999.",
    )
    torch_threads: int = Field(
        default=1, ge=1, description="CPU threads for local models: one is steadier when servers share cores."
    )
    embedding_workers: int = Field(
        default=2, ge=1, le=16,
        description="Embedding batches run at once (each on `torch_threads` threads); about one per core.",
    )

    cache_dir: Path = Field(
        default_factory=lambda: Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache") / "alphaavatar",
        description="Files derived from installed models that can be rebuilt (the text model's ONNX export); "
        "shared by every data root.",
    )

    # Optional OpenAI-compatible LLM: absent by default, features degrade explicitly.
    llm_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("ALPHAAVATAR_LLM_BASE_URL", "OPENAI_BASE_URL")
    )
    llm_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("ALPHAAVATAR_LLM_API_KEY", "OPENAI_API_KEY")
    )
    llm_model: str | None = Field(default=None, description="Set this to enable the LLM (e.g. gpt-4o-mini).")

    # Files a tool may read when given a path instead of bytes.
    allowed_roots: list[Path] = Field(default_factory=list, description="Folders tools may read files from.")

    @field_validator("request_state_key", "request_state_previous_key", mode="after")
    @classmethod
    def _long_enough(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and len(v.get_secret_value().encode()) < 32:
            raise ValueError("A request-state key must be at least 32 characters of secret randomness; "
                             "generate one with: python -c \"import secrets; print(secrets.token_hex(32))\"")
        return v

    @field_validator("home", "cache_dir", mode="after")
    @classmethod
    def _expand_home(cls, v: Path) -> Path:
        return v.expanduser().resolve()

    def data_dir(self, server: str) -> Path:
        """The folder a server keeps its data in (created on first use)."""
        path = self.home / server
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def llm_enabled(self) -> bool:
        return bool(self.llm_model and (self.llm_base_url or self.llm_api_key))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
