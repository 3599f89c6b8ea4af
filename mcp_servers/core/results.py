"""Tool results: structured content for hosts that read it, a short text for those that read text."""

from __future__ import annotations

from typing import Any

from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel


def rendered(model: BaseModel, text: str) -> Any:
    """Return from a tool annotated with `model`'s type: the SDK validates it against the schema."""
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content=model.model_dump(mode="json", by_alias=True),
    )
