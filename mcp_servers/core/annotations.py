"""The tool-annotation presets every tool takes one of, and the mark of an owner-only tool."""

from __future__ import annotations

from mcp.types import ToolAnnotations

from .auth import OWNER_ONLY as OWNER_ONLY_KEY

# A host knows from these what needs a person's yes (tests/test_tools_list.py checks each live tool's fits).
READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)  # only reads our own data
READ_ONLY_WEB = ToolAnnotations(read_only_hint=True, open_world_hint=True)  # only reads, and reaches the web
# Adds or changes, losing nothing (what it replaces stays in a history), or only drives the character.
WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False)
WRITE_WEB = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True)
DESTRUCTIVE = ToolAnnotations(destructive_hint=True, open_world_hint=False)  # erases or merges away for good
OWNER_ONLY = {OWNER_ONLY_KEY: True}  # the `meta` of a tool no user may call (nor the owner acting as one)
