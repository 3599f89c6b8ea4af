"""Where each server lives. The CLI launches servers from here; nothing else imports them."""

from __future__ import annotations

import importlib

from mcp_servers.core.runner import ServerSpec
from mcp_servers.core.settings import Settings

SERVERS: dict[str, str] = {
    "memory": "mcp_servers.memory.server",
    "persona": "mcp_servers.persona.server",
    "character": "mcp_servers.character.server",
    "research": "mcp_servers.research.server",
}


def available() -> list[str]:
    """Servers whose package is present in this checkout."""
    import importlib.util

    def present(module: str) -> bool:
        try:
            return importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:  # its package is not there at all
            return False

    return [name for name, mod in SERVERS.items() if present(mod)]


def create(name: str, settings: Settings) -> ServerSpec:
    if name not in SERVERS:
        raise KeyError(f"unknown server {name!r}; choose one of {', '.join(SERVERS)}")
    module = importlib.import_module(SERVERS[name])
    spec: ServerSpec = module.create_server(settings)
    return spec
