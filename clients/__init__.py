"""Clients of the servers: the `alphaavatar` CLI, host configuration, text chat, examples."""

from mcp_servers.core.server import VERSION as __version__

__all__ = ["__version__"]
