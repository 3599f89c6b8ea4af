"""Tool results: structured content for hosts that read it, a short text for those that read text."""

from __future__ import annotations

from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel


def rendered(model: BaseModel, text: str) -> CallToolResult:
    """Return from a tool annotated `Annotated[CallToolResult, Model]`: the SDK publishes `Model`'s
    schema and validates the structured content against it."""
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content=model.model_dump(mode="json", by_alias=True),
    )
