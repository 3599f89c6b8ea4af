"""The AlphaAvatar MCP servers (memory, persona, character, research) and the core they share."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("alphaavatar")
except PackageNotFoundError:  # running from a checkout without install
    __version__ = "0.0.0"
