"""Clients of the servers: the `alphaavatar` CLI, host configuration, text chat, examples."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("alphaavatar")
except PackageNotFoundError:  # running from a checkout without install
    __version__ = "0.0.0"
