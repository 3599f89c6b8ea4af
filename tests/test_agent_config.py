"""The pipeline YAML: expansion, overrides, and errors that name the file, line and key."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest

from agent.config import ConfigError
from agent.config_file import load_config
from tests.support import ALPHAAVATAR, ROOT, server_env

EXAMPLES = ROOT / "clients" / "examples"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def error_of(path: Path, **kw: object) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path, **kw)  # type: ignore[arg-type]
    assert info.value.code == 2
    return str(info.value)


def test_expansion_defaults_and_escapes(tmp_path: Path) -> None:
    path = write(tmp_path, """
        avatar:
          name: ${NAME:-Ava}
          instructions: "costs $$5, model ${MODEL}"
        llm:
          provider: openai
          model: ${MODEL}
          base_url: ${BASE:-}
        mcp_servers:
          - memory
          - {name: web, url: "http://127.0.0.1:9/mcp", headers: {Authorization: "Bearer ${TOKEN:-none}"}}
    """)
    cfg = load_config(path, env={"MODEL": "gpt-x", "TOKEN": "t0k"})
    assert cfg.avatar.name == "Ava"
    assert cfg.avatar.instructions == "costs $5, model gpt-x"
    assert cfg.llm.options() == {"model": "gpt-x"}  # empty base_url left to the library default
    memory, web = cfg.mcp_servers
    assert memory.command == ["alphaavatar", "serve", "memory", "--transport", "stdio"]
    assert web.transport == "http" and web.headers == {"Authorization": "Bearer t0k"}


def test_missing_env_var_names_file_line_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, """
        llm:
          provider: openai
          model: gpt-x
          api_key: ${SECRET_KEY}
    """)
    message = error_of(path, env={})
    assert f"{path}:4: llm.api_key" in message
    assert "SECRET_KEY is not set" in message


def test_unknown_provider_and_unknown_key(tmp_path: Path) -> None:
    path = write(tmp_path, """
        llm:
          provider: openai
          model: gpt-x
        tts:
          provider: elevenlabz
        turn:
          recall_budget: 100
    """)
    message = error_of(path, env={})
    assert f"{path}:5: tts.provider: unknown provider 'elevenlabz'; choose one of: openai" in message
    assert f"{path}:7: turn.recall_budget: unknown key" in message


def test_bad_values_and_missing_sections(tmp_path: Path) -> None:
    path = write(tmp_path, """
        mcp_servers:
          - name: other
          - {name: bad, url: "ftp://x"}
        turn:
          recall_budget_ms: -5
    """)
    message = error_of(path, env={})
    assert "llm: required key is missing" in message
    assert f"{path}:2: mcp_servers[0]: give a 'command' or a 'url'" in message
    assert f"{path}:3: mcp_servers[1]: 'url' must start with http://" in message
    assert f"{path}:5: turn.recall_budget_ms: Input should be greater than 0" in message


def test_set_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, """
        llm: {provider: openai, model: a}
        mcp_servers: [memory, persona]
    """)
    cfg = load_config(path, ["llm.model=b", "turn.recall_budget_ms=80", "mcp_servers.1.timeout=5",
                             "character.enabled=false", "llm.temperature=0.2"], env={})
    assert cfg.llm.options() == {"model": "b", "temperature": 0.2}
    assert cfg.turn.recall_budget_ms == 80
    assert cfg.mcp_servers[1].timeout == 5
    assert cfg.character.enabled is False
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        load_config(path, ["llm.model"], env={})
    with pytest.raises(ConfigError, match="has no item 7"):
        load_config(path, ["mcp_servers.7.timeout=1"], env={})


def test_command_not_found_is_a_config_error(tmp_path: Path) -> None:
    path = write(tmp_path, """
        llm: {provider: openai, model: a}
        mcp_servers:
          - {name: weather, command: "no-such-mcp-server --stdio"}
    """)
    assert "command 'no-such-mcp-server' not found on PATH" in error_of(path, env={})


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, """
        llm:
          provider: openai
          model: [unclosed
    """)
    assert f"{path}:" in error_of(path, env={}) and "not valid YAML" in error_of(path, env={})


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_examples_validate(name: str) -> None:
    env = {"ALPHAAVATAR_LLM_MODEL": "m", "OPENAI_API_KEY": "k", "OPENAI_BASE_URL": "http://127.0.0.1:1/v1",
           "TAVILY_API_KEY": "t"}
    cfg = load_config(EXAMPLES / name, env=env)
    assert cfg.llm.options()["model"]


def test_cli_reports_bad_config_at_start(tmp_path: Path) -> None:
    """`alphaavatar chat` with a bad config: exit status 2 and one clear message, no traceback."""
    path = write(tmp_path, """
        llm:
          provider: anthropic
          model: x
    """)
    proc = subprocess.run([ALPHAAVATAR, "chat", str(path)], input="hi\n", capture_output=True, text=True,
                          env=server_env(tmp_path), timeout=120)
    assert proc.returncode == 2
    assert f"{path}:2: llm.provider: unknown provider 'anthropic'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_worker_reports_what_is_missing_before_starting(tmp_path: Path) -> None:
    """`alphaavatar agent start` / `alphaavatar dev`: a text-only config, or no LiveKit server set."""
    text_only = write(tmp_path, """
        llm: {provider: openai, model: x}
    """)
    env = {k: v for k, v in server_env(tmp_path).items() if not k.startswith("LIVEKIT_")}
    proc = subprocess.run([ALPHAAVATAR, "agent", "start", str(text_only)], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 2 and "a voice agent needs stt: and tts:" in proc.stderr
    voice = EXAMPLES / "pipeline_openai_airi.yaml"
    proc = subprocess.run([ALPHAAVATAR, "dev", str(voice)], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert "set LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET" in proc.stderr


def test_behavior_in_one_place(tmp_path: Path) -> None:
    path = write(tmp_path, """
        llm: {provider: openai, model: m}
        behavior:
          reflect: sometimes
          followup_kinds: [reminder]
          followups_per_turn: 9
    """)
    message = error_of(path)
    assert f"{path}:3: behavior.reflect" in message
    assert f"{path}:5: behavior.followups_per_turn" in message
    assert load_config(path, ["behavior.reflect=off", "behavior.followups_per_turn=2"]).behavior.reflect == "off"
    moved = write(tmp_path, """
        llm: {provider: openai, model: m}
        turn:
          remember: false
    """)
    assert "turn.remember moved to the behavior: section (behavior.remember)" in error_of(moved)
    cfg = load_config(moved, ["turn={}", "behavior.remember=false", "behavior.reflect=session_end"])
    assert not cfg.behavior.remember and cfg.behavior.followups and cfg.behavior.followup_kinds == ["event", "reminder"]
