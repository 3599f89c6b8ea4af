"""From a pipeline config to running parts: models, MCP hub, hooks, the agent and its session.

`Runtime` owns what one conversation needs and closes it in the right order: the session, then
the character and memory queues (flushed). The MCP hub belongs to the caller (a worker may
serve several conversations with one hub); close it after the runtimes that use it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from livekit.agents import AgentSession

from .addressing import Addressing, llm_judge
from .avatar import AvatarAgent
from .character import CharacterLink
from .config import ConfigError, ModelConfig, PipelineConfig
from .identity import Settler
from .mcp_sessions import McpHub
from .remember import MemoryWriter, new_journal
from .status import Status
from .turn import TurnHooks

log = logging.getLogger(__name__)


def agent_home() -> Path:
    """Where the agent keeps its files (the memory journal): `$ALPHAAVATAR_HOME/agent`. The `alphaavatar`
    CLI always sets the variable (from the servers' settings, the one place its default lives)."""
    root = os.environ.get("ALPHAAVATAR_HOME")
    if not root:
        raise RuntimeError("ALPHAAVATAR_HOME is not set: start the agent with the `alphaavatar` command, "
                           "or pass home= to build_runtime")
    return Path(root).expanduser() / "agent"


def _openai_options(spec: ModelConfig) -> dict[str, Any]:
    options = spec.options()
    if not options.get("api_key") and not os.environ.get("OPENAI_API_KEY"):
        options["api_key"] = "unused"  # local OpenAI-compatible servers take any key
    return options


def _construct(section: str, factory: Any, options: dict[str, Any]) -> Any:
    """Build a model; an option the provider does not take is a config error naming it."""
    try:
        return factory(**options)
    except TypeError as exc:
        raise ConfigError(f"{section}: an option is not accepted by its provider: {exc}") from None
    except ValueError as exc:
        raise ConfigError(f"{section}: {exc}") from None


def build_llm(spec: ModelConfig) -> Any:
    from livekit.plugins import openai

    options = _openai_options(spec)
    if not options.get("model"):
        raise ConfigError("llm.model is not set: set ALPHAAVATAR_LLM_MODEL (or llm.model in the config)")
    return _construct("llm", openai.LLM, options)


def build_stt(spec: ModelConfig) -> Any:
    from livekit.plugins import openai

    return _construct("stt", openai.STT, _openai_options(spec))


def build_tts(spec: ModelConfig) -> Any:
    from livekit.plugins import openai

    return _construct("tts", openai.TTS, _openai_options(spec))


def build_vad(spec: ModelConfig | None) -> Any:
    from livekit.plugins import silero

    return _construct("vad", silero.VAD.load, spec.options() if spec else {})


# Defaults for the servers the agent starts. One compute thread each: the servers run side by side
# (identification and recall in parallel) and, on a small machine, torch threads of several
# processes fighting over the same cores made a turn's hooks ~4x slower (bench/agent_turn.py).
SERVER_DEFAULTS = {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def server_env(config: PipelineConfig) -> dict[str, str]:
    """The environment our stdio servers inherit: the agent's own (it wins over the defaults),
    the avatar id, renderer settings."""
    return {**SERVER_DEFAULTS, **os.environ, **config.character.server_env(), "ALPHAAVATAR_AVATAR_ID": config.avatar.id}


@dataclass
class Runtime:
    config: PipelineConfig
    hub: McpHub
    hooks: TurnHooks
    character: CharacterLink
    agent: AvatarAgent
    session: AgentSession

    async def warm(self, within: float = 120.0) -> None:
        """Before the first turn: the servers load their models, the agent its tool search model."""
        await asyncio.gather(self.hooks.warm(within), self.agent.toolset.warm(within),
                             self.agent.addressing.learn_names(self.hub))

    async def aclose(self, flush_within: float = 30.0) -> None:
        try:
            await self.session.aclose()
        finally:
            self.agent.close_turn()
            await self.agent.status.aclose()
            await self.character.aclose()
            await self.hooks.aclose(flush_within)


async def start_hub(config: PipelineConfig, wait: float | None = None,
                    log_dir: Path | None = None) -> tuple[McpHub, dict[str, str]]:
    """Connect to every configured server at once; `log_dir` collects the stdio servers' stderr."""
    hub = McpHub(config.mcp_servers, server_env(config), log_dir)
    failures = await hub.start(wait)
    for name, error in failures.items():
        log.warning("MCP server %s is not available yet (%s); its tools fail until it connects", name, error)
    return hub, failures


def build_runtime(config: PipelineConfig, hub: McpHub, *, user_id: str | None = None, voice: bool = False,
                  session_id: str | None = None, vad: Any = None, home: Path | None = None) -> Runtime:
    """Everything for one conversation; `voice` adds STT, TTS and VAD to the session."""
    session_id = session_id or uuid.uuid4().hex[:12]
    writer = MemoryWriter(hub, new_journal((home or agent_home()) / "journal", session_id))
    hooks = TurnHooks(hub, config.turn, session_id, writer, user_id=user_id,
                      experience_limit=config.context.tool_experience_limit if config.context.tool_experience else 0,
                      group=config.group, behavior=config.behavior)
    character = CharacterLink(hub, config.character)
    status = Status(config.status, character)
    hooks.settler = Settler(hub, hooks.speakers, writer, config.turn.merge_provisional)
    model = build_llm(config.llm)
    addressing = Addressing(config.avatar.name, config.group, llm_judge(model, config.avatar.name))
    agent = AvatarAgent(config, hub, hooks, character, status, addressing)
    kwargs: dict[str, Any] = {"llm": model, "vad": None,
                              "turn_handling": {"turn_detection": "manual"}}
    if voice:
        if config.stt is None or config.tts is None:
            raise ConfigError("voice needs 'stt:' and 'tts:' sections in the config")
        kwargs.update(stt=build_stt(config.stt), tts=build_tts(config.tts), vad=vad or build_vad(config.vad),
                      turn_handling={"turn_detection": "vad", "interruption": {"mode": "vad"},
                                     "endpointing": {"min_delay": config.turn.endpointing_delay},
                                     # the turn's recalled context changes the request, so a reply
                                     # started before the hook would always be thrown away
                                     "preemptive_generation": {"enabled": False}})
    session: AgentSession = AgentSession(**kwargs)
    agent.attach(session)
    writer.start()
    character.start()
    return Runtime(config, hub, hooks, character, agent, session)
