"""Where each server lives. The CLI launches servers from here; nothing else imports them."""

from __future__ import annotations

import importlib
import importlib.util

from mcp_servers.core.settings import Settings
from mcp_servers.core.transports import RefusedToStart, ServerSpec

SERVERS: dict[str, str] = {
    "memory": "mcp_servers.memory.server",
    "persona": "mcp_servers.persona.server",
    "character": "mcp_servers.character.server",
    "research": "mcp_servers.research.server",
}
# A module each server's extra (`pip install 'alphaavatar[memory]'`) installs, found without importing it.
EXTRA_MODULES: dict[str, str] = {"memory": "mem0", "persona": "resemblyzer", "character": "espeakng_loader",
                                 "research": "trafilatura"}


def _present(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its package is not there at all
        return False


def available() -> list[str]:
    """Servers present in this checkout whose extra is installed."""
    return [name for name, mod in SERVERS.items() if _present(mod) and _present(EXTRA_MODULES[name])]


def create(name: str, settings: Settings) -> ServerSpec:
    if name not in SERVERS:
        raise KeyError(f"unknown server {name!r}; choose one of {', '.join(SERVERS)}")
    if not _present(EXTRA_MODULES[name]):
        raise RefusedToStart(f"The {name} server is not installed here: pip install 'alphaavatar[{name}]' adds it.")
    module = importlib.import_module(SERVERS[name])
    spec: ServerSpec = module.create_server(settings)
    return spec
