"""Claude Desktop configuration: every server over stdio, from this installation."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

from mcp_servers.core.settings import get_settings

from .registry import available


def executable() -> str:
    """The absolute path of the `alphaavatar` command of this installation."""
    found = shutil.which("alphaavatar")
    if found:
        return str(Path(found).resolve())
    return str(Path(sys.executable).with_name("alphaavatar"))


def claude_desktop_config() -> dict[str, Any]:
    home = str(get_settings().home)
    exe = executable()
    return {
        "mcpServers": {
            f"alphaavatar-{name}": {
                "command": exe,
                "args": ["serve", name, "--transport", "stdio"],
                "env": {"ALPHAAVATAR_HOME": home},
            }
            for name in available()
        }
    }
