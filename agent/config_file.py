"""The pipeline YAML: load, expand `${VAR}` / `${VAR:-default}`, apply `--set a.b=c`, validate.

Every error names the file, the line and the dotted key, so a person can fix it without
reading a stack trace.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .config import ConfigError, PipelineConfig

PROVIDERS: dict[str, tuple[str, ...]] = {"llm": ("openai",), "stt": ("openai",), "tts": ("openai",),
                                         "vad": ("silero",)}
_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")

Path_ = tuple[str | int, ...]


class _Lines:
    """Line numbers of every key and list item of a YAML document, by path."""

    def __init__(self, text: str):
        self.lines: dict[Path_, int] = {}
        try:
            root = yaml.compose(text)
        except yaml.YAMLError:
            return
        if root is not None:
            self._walk(root, ())

    def _walk(self, node: yaml.Node, path: Path_) -> None:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                sub = (*path, key.value)
                self.lines[sub] = key.start_mark.line + 1
                self._walk(value, sub)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._walk(item, (*path, i))

    def of(self, path: Path_) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get(())


def _dotted(path: Path_) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def _expand(value: Any, path: Path_, env: dict[str, str], fail: Any) -> Any:
    if isinstance(value, dict):
        return {k: _expand(v, (*path, k), env, fail) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, (*path, i), env, fail) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name, default = m.group(1), m.group(2)
        if name in env and env[name] != "":
            return env[name]
        if default is not None:
            return default
        fail(path, f"environment variable {name} is not set (set it, or write ${{{name}:-default}})")
        return ""

    return _VAR.sub(sub, value)


def _parse_set(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: write KEY=VALUE, e.g. --set llm.model=gpt-4o-mini")
    key, raw = item.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw else ""
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def _apply_set(data: dict[str, Any], keys: list[str], value: Any, item: str) -> None:
    node: Any = data
    for i, key in enumerate(keys):
        last = i == len(keys) - 1
        if isinstance(node, list):
            if not key.isdigit() or int(key) >= len(node):
                raise ConfigError(f"--set {item}: {'.'.join(keys[:i])} has no item {key}")
            if last:
                node[int(key)] = value
            else:
                node = node[int(key)]
        elif isinstance(node, dict):
            if last:
                node[key] = value
            else:
                if node.get(key) is None:
                    node[key] = {}
                node = node[key]
        else:
            raise ConfigError(f"--set {item}: {'.'.join(keys[:i])} is not a mapping")


def _field_path(loc: tuple[Any, ...]) -> Path_:
    """A pydantic error location as a YAML path (drops union/validator tags)."""
    return tuple(p for p in loc if isinstance(p, int) or (isinstance(p, str) and not p.startswith("function-")))


def load_config(path: str | Path, overrides: list[str] | None = None, env: dict[str, str] | None = None) -> PipelineConfig:
    """Read, expand, override and validate a pipeline YAML. Raises ConfigError naming what to fix."""
    path = Path(path)
    env = dict(os.environ) if env is None else env
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: the config must be a mapping (avatar:, llm:, mcp_servers: ...)")
    lines = _Lines(text)
    problems: list[str] = []

    def fail(p: Path_, message: str) -> None:
        line = lines.of(p)
        problems.append(f"{path}:{line}: {_dotted(p)}: {message}" if line else f"{path}: {_dotted(p)}: {message}")

    data = _expand(data, (), env, fail)
    if isinstance(data.get("mcp_servers"), list):  # shorthand items become mappings --set can reach into
        data["mcp_servers"] = PipelineConfig._names(data["mcp_servers"])
    for item in overrides or []:
        keys, value = _parse_set(item)
        _apply_set(data, keys, value, item)
    for section, known in PROVIDERS.items():
        spec = data.get(section)
        if isinstance(spec, dict) and spec.get("provider") not in known:
            fail((section, "provider"), f"unknown provider {spec.get('provider')!r}; choose one of: {', '.join(known)}")
    try:
        config = PipelineConfig.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = _field_path(tuple(err["loc"]))
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                message = "unknown key (check its spelling)"
            elif err["type"] == "missing":
                message = "required key is missing"
            fail(loc, message)
    if problems:
        raise ConfigError("Invalid agent config:\n  " + "\n  ".join(problems))
    for i, server in enumerate(config.mcp_servers):
        if server.command and server.executable() is None:
            fail(("mcp_servers", i), f"MCP server {server.name!r}: command {server.command[0]!r} not found "
                 "on PATH; install it or give its full path")
    if problems:
        raise ConfigError("Invalid agent config:\n  " + "\n  ".join(problems))
    return config
