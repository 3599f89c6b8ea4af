"""The research server's own settings (core knows no server): Tavily, fetching, limits."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ResearchSettings(BaseSettings):
    """`ALPHAAVATAR_RESEARCH_*` variables (and the plain `TAVILY_*` names); every default is usable."""

    model_config = SettingsConfigDict(
        env_prefix="ALPHAAVATAR_RESEARCH_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    tavily_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("ALPHAAVATAR_RESEARCH_TAVILY_API_KEY", "TAVILY_API_KEY"),
        description="Enables web search; without it research runs over the local corpus only.",
    )
    tavily_base_url: str = Field(
        default="https://api.tavily.com",
        validation_alias=AliasChoices("ALPHAAVATAR_RESEARCH_TAVILY_BASE_URL", "TAVILY_BASE_URL"),
    )

    # Fetching pages ourselves (extract fallback, corpus URLs).
    fetch_allowlist: list[str] = Field(
        default_factory=list,
        description="Host names or IP networks (CIDR) that may be fetched even though they are private, "
        'e.g. ["intranet.example", "10.0.0.0/8"]. Everything private is refused otherwise.',
    )
    fetch_max_bytes: int = Field(default=10_000_000, gt=0)
    fetch_timeout_s: float = Field(default=20.0, gt=0, description="Whole-fetch deadline, redirects included.")
    fetch_max_redirects: int = Field(default=5, ge=0)

    # Provider calls.
    concurrency: int = Field(default=6, ge=1, description="Sub-queries searched at once (deep: one round).")
    rate_per_s: float = Field(default=10.0, gt=0, description="Provider calls per second, per process.")
    retries: int = Field(default=3, ge=0, description="Retries of a provider call after 429/5xx/time-out.")
    backoff_s: float = Field(default=0.5, ge=0, description="First retry delay; doubles each time (jittered).")
    backoff_max_s: float = Field(default=8.0, ge=0)
    timeout_s: float = Field(default=30.0, gt=0, description="One provider call.")
    cache_ttl_s: float = Field(default=900.0, ge=0, description="Search results are reused this long.")
    cache_size: int = Field(default=1024, ge=1)

    # The research flow.
    quick_queries: int = Field(default=3, ge=1, le=12, description="Sub-queries planned for depth=quick.")
    deep_queries: int = Field(default=6, ge=1, le=12, description="Sub-queries planned for depth=deep.")
    quick_budget: int = Field(default=6, ge=1, description="Max provider calls of one quick research.")
    deep_budget: int = Field(default=16, ge=1, description="Max provider calls of one deep research.")
    job_ttl_s: float = Field(default=3600.0, gt=0, description="Finished jobs are kept this long.")
    max_jobs: int = Field(default=64, ge=1, description="Jobs kept at once (oldest finished dropped first).")

    # The local corpus.
    chunk_words: int = Field(default=100, ge=20, le=400, description="Passage size; passages overlap by half.")
    max_document_chars: int = Field(default=5_000_000, gt=0)
    max_file_bytes: int = Field(default=50_000_000, gt=0)

    @field_validator("tavily_api_key", mode="after")
    @classmethod
    def _empty_is_unset(cls, v: SecretStr | None) -> SecretStr | None:
        return v if v is not None and v.get_secret_value().strip() else None
