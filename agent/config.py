"""The pipeline config: one pydantic model per section of the YAML, with its defaults and checks.

`agent.config_file` reads a YAML file into it (`load_config`); a config that must not start is a
`ConfigError`.
"""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .contracts import MEMORY_SEARCH, RESEARCH, WEB_SEARCH

OUR_SERVERS = ("memory", "persona", "character", "research")


class ConfigError(SystemExit):
    """A configuration that must not start; the command prints the message and exits with 2."""

    def __init__(self, message: str):
        super().__init__(message)
        self.code = 2


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Avatar(_Strict):
    id: str = Field(default="default", description="Whose memories: our servers keep one store per avatar id.")
    name: str = "Alpha"
    instructions: str = "You are a friendly, concise voice assistant."


class ModelConfig(_Strict):
    """One model (LLM, STT, TTS or VAD): its provider and the options that provider takes."""

    model_config = ConfigDict(extra="allow")
    provider: str

    def options(self) -> dict[str, Any]:
        """Provider options with unset (empty) values left out, so library defaults apply."""
        return {k: v for k, v in (self.model_extra or {}).items() if v not in (None, "")}


class McpServerConfig(_Strict):
    """An MCP server: one of ours by name, a stdio command, or an HTTP/SSE URL."""

    name: str
    command: list[str] | None = None
    url: str | None = None
    transport: Literal["stdio", "http", "sse"] | None = None
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: float = Field(default=30.0, gt=0, description="Per-call timeout, seconds.")
    connect_timeout: float = Field(default=60.0, gt=0)
    exclude_tools: list[str] = Field(default_factory=list, description="Tools not offered to the LLM.")

    @field_validator("command", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        return shlex.split(v) if isinstance(v, str) else v

    @model_validator(mode="after")
    def _one_endpoint(self) -> McpServerConfig:
        if self.command is None and self.url is None:
            if self.name not in OUR_SERVERS:
                raise ValueError(f"give a 'command' or a 'url' (or use one of our servers: {', '.join(OUR_SERVERS)})")
            self.command = ["alphaavatar", "serve", self.name, "--transport", "stdio"]
        if self.command is not None and self.url is not None:
            raise ValueError("give either 'command' or 'url', not both")
        if self.command is not None and not self.command:
            raise ValueError("'command' is empty")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"'url' must start with http:// or https:// (got {self.url!r})")
        if self.transport is None:
            self.transport = "stdio" if self.command else ("sse" if self.url.rstrip("/").endswith("/sse") else "http")  # type: ignore[union-attr]
        return self

    def executable(self) -> str | None:
        """The command's program: `alphaavatar` of this installation, else as found on PATH (or
        next to this Python); None if nowhere."""
        assert self.command
        program = self.command[0]
        sibling = Path(sys.executable).with_name(Path(program).name)
        if program == "alphaavatar" and sibling.exists():
            return str(sibling)
        if found := shutil.which(program):
            return found
        return str(sibling) if "/" not in program and sibling.exists() else None


class TurnConfig(_Strict):
    recall_budget_ms: float = Field(default=150, gt=0, description="Recall never delays a turn longer.")
    identify_budget_ms: float = Field(default=400, gt=0, description="Speaker identification budget.")
    memory_limit: int = Field(default=5, ge=1, le=50)
    endpointing_delay: float = Field(default=0.5, ge=0, description="Silence (s) that ends a spoken turn.")
    identify_speaker: bool = True
    stream_identify_s: float = Field(default=1.5, ge=0, le=10, description="Identify after this much speech, "
                                     "while the person still talks (0: when speech stops).")
    split_min_s: float = Field(default=3.0, ge=0, le=30, description="A turn with this much speech is checked "
                               "for a second voice and split where the voice changes (0: never).")
    adapt_voiceprints: bool = Field(default=True, description="Let confident matches refine a voiceprint.")
    recall: bool = True
    merge_provisional: Literal["auto", "ask", "off"] = Field(
        default="auto", description="A provisional voice whose face confidently matches an enrolled user: merge it "
                                    "(auto), have the LLM ask the person first (ask), or leave it (off).")


class BehaviorConfig(_Strict):
    """What the avatar does on its own, in one place: when it writes memory, when it reflects, which
    follow-ups it raises and how often. The defaults are a careful assistant's."""

    remember: bool = Field(default=True, description="Write each finished turn to the speaker's memory.")
    record_tool_calls: bool = Field(default=True, description="Keep every tool call and how it went (tool memory).")
    reflect: Literal["session_end", "off"] = Field(
        default="session_end", description="Reflect on the memories of everyone it remembered for when the "
        "conversation ends (memory_reflect), or never on its own.")
    reflect_every: int = Field(default=50, ge=0, le=10_000, description="Also reflect for a person after this many "
                               "new turns of theirs in one conversation (0: only at the end).")
    reflect_idle_s: float = Field(default=300, ge=0, le=86_400, description="Also reflect for everyone with new "
                                  "turns once the conversation has been quiet this long (0: only at the end).")
    followups: bool = Field(default=True, description="Bring up what a person said would happen (an exam, a "
                            "call to make) once it is due, once, and only in front of whom may hear it.")
    followup_kinds: list[Literal["event", "reminder"]] = Field(
        default=["event", "reminder"], description="Which follow-ups it raises.")
    followups_per_turn: int = Field(default=1, ge=1, le=5, description="At most this many raised in one turn.")
    followup_ahead_h: float = Field(default=0, ge=0, le=168, description="Also raise those due within this many "
                                    "hours (0: only those already due).")

    @field_validator("reflect", mode="before")
    @classmethod
    def _off(cls, v: Any) -> Any:
        return "off" if v is False else v  # YAML reads a bare `off` as false


class CharacterConfig(_Strict):
    """The character, through the character server's tools (any renderer it drives)."""

    enabled: bool = True
    emotions: bool = Field(default=True, description="Ask the LLM for [emotion] tags; strip them before TTS.")
    lip_sync: bool = Field(default=True, description="Send each utterance's TTS audio for the mouth.")
    airi_url: str | None = Field(default=None, description="AIRI server WebSocket, e.g. ws://localhost:6121/ws.")
    vts_url: str | None = Field(default=None, description="VTube Studio API WebSocket, e.g. ws://localhost:8001.")

    def server_env(self) -> dict[str, str]:
        """Renderer settings for our character server (it reads ALPHAAVATAR_CHARACTER_*)."""
        env = {"ALPHAAVATAR_CHARACTER_AIRI_URL": self.airi_url, "ALPHAAVATAR_CHARACTER_VTS_URL": self.vts_url}
        return {k: v for k, v in env.items() if v}


class ContextConfig(_Strict):
    """The per-turn context block that follows the user's message (agent.context)."""

    timezone: str | None = Field(default=None, description="IANA name, e.g. Europe/Lisbon; a participant's "
                                 "metadata or attribute 'timezone' wins; default: this machine's.")
    budget_tokens: int = Field(default=600, ge=100, le=8000, description="The block never exceeds this (≈ 4 chars a token).")
    tool_experience: bool = Field(default=True, description="Recall past calls of tools for similar tasks.")
    tool_experience_limit: int = Field(default=3, ge=1, le=10)

    @field_validator("timezone")
    @classmethod
    def _known(cls, v: str | None) -> str | None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        if v:
            try:
                ZoneInfo(v)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown timezone {v!r}: use an IANA name such as Europe/Lisbon") from None
        return v or None


class StatusConfig(_Strict):
    """Status events of a turn and the fillers spoken while the user waits (agent.status)."""

    fillers: bool = Field(default=True, description="Speak a short filler while the user waits (voice only).")
    filler_after: float = Field(default=1.5, gt=0, le=10, description="Seconds without a first token before one.")
    long_tools: list[str] = Field(default_factory=lambda: ["research", "research_*", "web_*", "corpus_add"],
                                  description="Tools (fnmatch patterns) slow enough to announce when they start.")
    language: str = Field(default="en", description="Filler language (agent/fillers/<code>.yaml); the user's "
                          "profile identity.languages wins when it names one we have.")
    verbosity: Literal["quiet", "normal", "verbose"] = Field(
        default="normal", description="quiet: no fillers; verbose: also every tool and progress. A user's "
        "profile custom.status_verbosity wins.")
    topic: str = Field(default="alphaavatar.status", description="LiveKit data topic of the events.")


class VisionConfig(_Strict):
    """Sight: camera frames on the turn's user message, for a vision-capable LLM."""

    enabled: bool = Field(default=False, description="Attach camera frames to each turn (the LLM must take images).")
    frames: int = Field(default=3, ge=1, le=8, description="Frames per turn, spread over the last 2 s.")
    max_side: int = Field(default=512, ge=64, le=2048, description="Pixels on a frame's longer side, at most.")


DEFAULT_VISIBLE = [RESEARCH, WEB_SEARCH, MEMORY_SEARCH]


class ToolPolicy(_Strict):
    """Which tools each LLM request carries. The agent identifies, recalls and remembers by itself,
    so a voice assistant needs few tools up front; every other discovered tool stays reachable
    through `find_tools` (hybrid search over names and descriptions) and `call_tool`."""

    visible: list[str] = Field(default_factory=lambda: list(DEFAULT_VISIBLE),
                               description="Tool names (fnmatch patterns, '*' for all) offered up front.")
    search: bool = Field(default=True, description="Offer find_tools / call_tool for the tools not visible.")
    dense: bool = Field(default=True, description="Hybrid search: MiniLM embeddings next to BM25 (else BM25 only).")
    find_limit: int = Field(default=5, ge=1, le=20, description="Tools one find_tools call returns at most.")


class GroupConfig(_Strict):
    """Several people, one avatar: who is present and when the avatar is spoken to (agent.presence,
    agent.addressing)."""

    addressing: bool = Field(default=True, description="Reply only when spoken to (its name, a question right "
                             "after it answered that person, a face to the camera, alone); off: reply to everything.")
    names: list[str] = Field(default_factory=list, description="Other names the avatar answers to.")
    follow_up_s: float = Field(default=20, ge=0, le=600, description="A question this soon after the avatar "
                               "answered that person is for the avatar.")
    identify_wait_ms: float = Field(default=2500, gt=0, le=10_000, description="In company (or before anyone is "
                                    "known) a turn waits this long for who is speaking, rather than guess.")
    llm_judge: bool = Field(default=True, description="In unclear cases (in company, no cue) ask the LLM.")
    llm_budget_ms: float = Field(default=800, gt=0, le=10_000, description="The LLM's decision never takes longer.")
    voice_present_s: float = Field(default=600, gt=0, description="A voice heard this recently is present.")
    face_present_s: float = Field(default=10, gt=0, description="A face seen this recently is present.")
    unknown_present_s: float = Field(default=120, gt=0, description="An unrecognised voice counts as 'someone' "
                                     "present this long (nobody's private data is said meanwhile).")
    topic: str = Field(default="alphaavatar.character", description="LiveKit data topic of the character events.")
    hear_everyone: bool = Field(default=True, description="Hear every room participant's microphone, one speaker "
                                "at a time (agent.floor); off: only the participant livekit links, as it does.")


class PipelineConfig(_Strict):
    avatar: Avatar = Field(default_factory=Avatar)
    llm: ModelConfig
    stt: ModelConfig | None = None
    tts: ModelConfig | None = None
    vad: ModelConfig | None = None
    mcp_servers: list[McpServerConfig] = Field(default_factory=list)
    turn: TurnConfig = Field(default_factory=TurnConfig)
    character: CharacterConfig = Field(default_factory=CharacterConfig)
    tools: ToolPolicy = Field(default_factory=ToolPolicy)
    context: ContextConfig = Field(default_factory=ContextConfig)
    status: StatusConfig = Field(default_factory=StatusConfig)
    vision: VisionConfig = Field(default_factory=VisionConfig)
    group: GroupConfig = Field(default_factory=GroupConfig)
    behavior: BehaviorConfig = Field(default_factory=BehaviorConfig)

    @field_validator("turn", mode="before")
    @classmethod
    def _moved(cls, v: Any) -> Any:
        moved = sorted({"remember", "record_tool_calls"} & set(v)) if isinstance(v, dict) else []
        if moved:
            raise ValueError(f"{', '.join('turn.' + k for k in moved)} moved to the behavior: section "
                             f"({', '.join('behavior.' + k for k in moved)})")
        return v

    @field_validator("mcp_servers", mode="before")
    @classmethod
    def _names(cls, v: Any) -> Any:
        # `- memory` is shorthand for our memory server over stdio.
        return [{"name": s} if isinstance(s, str) else s for s in v] if isinstance(v, list) else v

    @model_validator(mode="after")
    def _unique(self) -> PipelineConfig:
        names = [s.name for s in self.mcp_servers]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"MCP server names must be unique: {', '.join(dupes)}")
        return self
