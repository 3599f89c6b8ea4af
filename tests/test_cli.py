"""The `alphaavatar` command as a person uses it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.support import ALPHAAVATAR, server_env


def run(args: list[str], home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ALPHAAVATAR, *args], env=server_env(home, **env), capture_output=True, text=True, timeout=180)


def test_version_and_help(tmp_path: Path) -> None:
    out = run(["--version"], tmp_path)
    assert out.returncode == 0 and out.stdout.startswith("alphaavatar ")
    helped = run(["--help"], tmp_path)
    for command in ("serve", "up", "tools", "call", "claude-config", "doctor"):
        assert command in helped.stdout


def test_claude_config_launches_every_server_over_stdio(tmp_path: Path) -> None:
    out = run(["claude-config"], tmp_path)
    config = json.loads(out.stdout)["mcpServers"]
    assert "alphaavatar-memory" in config
    for entry in config.values():
        assert Path(entry["command"]).is_absolute() and Path(entry["command"]).exists()
        assert entry["args"][0] == "serve" and entry["args"][-2:] == ["--transport", "stdio"]
        assert entry["env"]["ALPHAAVATAR_HOME"] == str(tmp_path)


def test_doctor_names_what_is_missing(tmp_path: Path) -> None:
    out = run(["doctor"], tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "LLM" in out.stdout and "ALPHAAVATAR_LLM_MODEL" in out.stdout
    assert "Qdrant Edge" in out.stdout
    with_qdrant = run(["doctor"], tmp_path, QDRANT_URL="http://127.0.0.1:6333")
    assert "Qdrant server at http://127.0.0.1:6333" in with_qdrant.stdout


def test_tools_and_call_drive_a_server(tmp_path: Path) -> None:
    listed = run(["tools", "memory"], tmp_path)
    assert listed.returncode == 0, listed.stderr
    names = [line.split(":")[0] for line in listed.stdout.splitlines()]
    assert {"memory_add", "memory_search", "memory_forget_user", "tool_experience_search"} <= set(names)
    added = run(["call", "memory", "memory_add", json.dumps({"content": "The CLI remembers", "user_id": "cli"})],
                tmp_path)
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["results"][0]["event"] == "ADD"
    found = run(["call", "memory", "memory_search", json.dumps({"query": "what does the CLI do", "user_id": "cli"})],
                tmp_path)
    assert json.loads(found.stdout)["results"][0]["content"] == "The CLI remembers"
    bad = run(["call", "memory", "memory_get", json.dumps({"memory_id": "nope"})], tmp_path)
    assert bad.returncode == 1 and "not a memory id" in bad.stdout
    not_json = run(["call", "memory", "memory_get", "{nope"], tmp_path)
    assert not_json.returncode == 2 and "not JSON" in not_json.stderr
    unknown = run(["call", "memory", "memory_teleport"], tmp_path)
    assert unknown.returncode == 1 and "Unknown tool 'memory_teleport'" in unknown.stderr, unknown.stderr[-2000:]
