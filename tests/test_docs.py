"""The documentation says what the code does: the README's tool tables are the servers' live tools/list
(docs/tools.py writes them), and every image a page shows exists."""

from __future__ import annotations

import re

from mcp.types import Tool

from docs.tools import README, ROOT, block, tables


def test_readme_tool_tables_match_the_live_servers(tools_lists: dict[str, list[Tool]]) -> None:
    assert block(README.read_text()) == tables(tools_lists), (
        "README.md's tool tables differ from the servers' tools/list: run `python docs/tools.py` and commit README.md")


def test_every_image_shown_exists() -> None:
    pages = [README, *sorted((ROOT / "docs").glob("*.md"))]
    missing = [f"{page.relative_to(ROOT)}: {src}" for page in pages
               for src in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", page.read_text())
               if not src.startswith(("http://", "https://")) and not (page.parent / src).exists()]
    assert not missing, "\n".join(missing)
