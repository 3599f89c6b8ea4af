"""The memory MCP server: long-term memory for any MCP host, scoped by avatar, user, tool, session."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field

from mcp_servers.core import audit, auth, params
from mcp_servers.core.annotations import DESTRUCTIVE, OWNER_ONLY, READ_ONLY, WRITE
from mcp_servers.core.bounds import MAX_BYTES, MAX_DEPTH, StoredObject, bounded
from mcp_servers.core.results import rendered
from mcp_servers.core.server import new_server
from mcp_servers.core.settings import Settings
from mcp_servers.core.store import Where
from mcp_servers.core.transports import ServerSpec
from mcp_servers.core.visibility import HEARD_HELP, PRESENT_HELP, VISIBILITY_HELP, People, Visibility

from .models import (
    MAX_CONTENT,
    AddItem,
    AddResult,
    DeleteResult,
    ExportResult,
    Followup,
    FollowupList,
    FollowupStatus,
    ForgetResult,
    HistoryResult,
    ListResult,
    MemoryItem,
    Message,
    ReassignResult,
    ReflectResult,
    Scope,
    SearchResult,
    ToolExperienceResult,
)
from .reading import to_item
from .render import (
    export_markdown,
    render_add,
    render_deleted,
    render_experiences,
    render_export,
    render_followups,
    render_forgot,
    render_history,
    render_items,
    render_memory,
    render_reassigned,
    render_reflect,
    render_visibility,
)
from .service import SCOPES, SEARCH_SCOPES, MemoryService

INSTRUCTIONS = """Long-term memory. Call memory_search with the user's words before answering questions
about them; call memory_add with what the user tells you that is worth keeping. Scopes: 'user' (this
user's facts and preferences, the default), 'session' (this conversation), 'avatar' (shared knowledge),
'tool' (tool-call experience: tool_call_record / tool_experience_search)."""

UserId = Annotated[params.UserId, Field(description="Whose memories (default 'default').")]
SessionId = Annotated[str | None, Field(default=None, max_length=200, description="A conversation id.")]
# Recorded arguments are stored one level down, inside the memory's metadata, next to the outcome.
ToolArguments = Annotated[dict[str, Any], bounded(MAX_DEPTH - 1, MAX_BYTES // 2)]
Since = Annotated[datetime | None, Field(description="Only memories that occurred at or after this time.")]
Until = Annotated[datetime | None, Field(description="Only memories that occurred at or before this time.")]
MemoryId = Annotated[str, Field(max_length=64, description="A memory id, as memory_add or memory_search return it.")]
ScopeFilter = Annotated[Scope | None, Field(description="Only this scope (default: user, session and avatar).")]
Present = Annotated[People | None, Field(description=PRESENT_HELP + " Only memories all of them may hear "
                                         "(default: no audience filter).")]
# setting a follow-up's status twice, or reflecting twice on the same memories, leaves it as once; nothing a
# person said is erased (a reflection replaces only what reflection derived)
RESETS = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False)


def tool_call_item(tool: str, arguments: dict[str, Any], outcome: str, success: bool, latency_ms: float | None,
                   task: str, user_id: str | None, session_id: str | None) -> AddItem:
    """A tool call as a 'tool'-scope memory: a sentence to search by, the call itself in the metadata."""
    text = f"{task or 'call'} → {tool}({json.dumps(arguments, ensure_ascii=False)[:1000]}): " + (
        ("ok: " if success else "failed: ") + outcome[:1000]
    )
    return AddItem(content=text, scope="tool", user_id=user_id, session_id=session_id, infer=False, metadata={
        "tool": tool, "arguments": arguments, "outcome": outcome or None, "success": success,
        "latency_ms": latency_ms, "task": task or None})


def create_server(settings: Settings) -> ServerSpec:
    svc = MemoryService(settings)
    mcp = new_server("memory", INSTRUCTIONS, settings)
    audit.install(mcp, settings, "memory", forget_tool="memory_forget_user")

    def visible(ctx: Context, scope: Scope | None, user_id: str | None, session_id: str | None,
                since: datetime | None, until: datetime | None, present: People | None) -> Where:
        """What memory_search and memory_list look through: the caller's memories, narrowed by their filters."""
        scopes = [scope] if scope else SEARCH_SCOPES
        return svc.visible(auth.caller(ctx), user_id, scopes, session_id, since, until, present)

    @mcp.tool(annotations=WRITE)
    async def memory_add(
        ctx: Context,
        # plain `str` (not Optional): the SDK would otherwise parse a JSON-looking text into an object
        content: Annotated[str, Field(max_length=MAX_CONTENT, description="Text to remember.")] = "",
        messages: Annotated[list[Message] | None, Field(max_length=200, description="Or a chat to remember.")] = None,
        scope: Scope = "user",
        user_id: UserId = None,
        session_id: SessionId = None,
        occurred_at: Annotated[datetime | None, Field(description="ISO-8601: when it was said (default now).")] = None,
        metadata: Annotated[StoredObject | None, Field(description="Free JSON kept with the memory.")] = None,
        infer: Annotated[bool, Field(description="With an LLM configured: extract facts (default) or keep verbatim.")] = True,
        visibility: Annotated[Visibility | None, Field(description=VISIBILITY_HELP)] = None,
        present: Annotated[People | None, Field(description=HEARD_HELP)] = None,
    ) -> Annotated[CallToolResult, AddResult]:
        """Remember a text or a conversation. Exact duplicates are not stored twice."""
        item = AddItem(content=content or None, messages=messages, scope=scope, user_id=user_id, session_id=session_id,
                       occurred_at=occurred_at, metadata=metadata or {}, infer=infer, visibility=visibility,
                       present=present or [])
        result = await svc.add([item], auth.caller(ctx))
        return rendered(result, render_add(result))

    @mcp.tool(annotations=WRITE)
    async def memory_add_batch(
        ctx: Context,
        items: Annotated[list[AddItem], Field(min_length=1, max_length=1000, description="Up to 1000 memories.")],
    ) -> Annotated[CallToolResult, AddResult]:
        """Remember many items in one call: all are validated first, then written together (or none)."""
        result = await svc.add(items, auth.caller(ctx))
        return rendered(result, render_add(result))

    @mcp.tool(annotations=READ_ONLY)
    async def memory_search(
        ctx: Context,
        query: Annotated[str, Field(min_length=1, max_length=2000, description="What to look for, in words.")],
        scope: ScopeFilter = None,
        user_id: UserId = None,
        session_id: SessionId = None,
        since: Since = None,
        until: Until = None,
        limit: Annotated[int, Field(ge=1, le=50)] = 10,
        cursor: params.Cursor = None,
        present: Present = None,
    ) -> Annotated[CallToolResult, SearchResult]:
        """Find memories by meaning and by words (hybrid dense + BM25), best first."""
        where = visible(ctx, scope, user_id, session_id, since, until, present)
        result = await svc.reading.search_page(where, query, limit, cursor)
        return rendered(result, render_items(result.results, "No memory matches."))

    @mcp.tool(annotations=READ_ONLY)
    @params.arguments_of(memory_search, query=None, limit=(Annotated[int, Field(ge=1, le=200)], 50))
    async def memory_list(ctx: Context, limit: int, cursor: str | None, **filters: Any
                          ) -> Annotated[CallToolResult, ListResult]:
        """List memories page by page, the most recently occurred first."""
        result = await svc.reading.list_page(visible(ctx, **filters), limit, cursor)
        return rendered(result, render_items(result.results, "No memories."))

    @mcp.tool(annotations=READ_ONLY)
    async def memory_get(ctx: Context, memory_id: MemoryId) -> Annotated[CallToolResult, MemoryItem]:
        """One memory by id."""
        item = to_item(await svc.get_owned(auth.caller(ctx), memory_id))
        return rendered(item, render_memory(item))

    @mcp.tool(annotations=WRITE)
    async def memory_update(
        ctx: Context,
        memory_id: MemoryId,
        content: Annotated[str, Field(max_length=MAX_CONTENT, description="The new text.")] = "",
        metadata: Annotated[StoredObject | None, Field(description="Keys to merge into the metadata.")] = None,
    ) -> Annotated[CallToolResult, MemoryItem]:
        """Change a memory's text and/or metadata; the old text stays in its history."""
        item = await svc.update(auth.caller(ctx), memory_id, content or None, metadata)
        return rendered(item, render_memory(item))

    @mcp.tool(annotations=WRITE)
    async def memory_set_visibility(
        ctx: Context,
        memory_id: MemoryId,
        visibility: Annotated[Visibility, Field(description="'private' (its person only), 'present' (also those "
                                                "present when it was said) or 'everyone'.")],
    ) -> Annotated[CallToolResult, MemoryItem]:
        """Change who may hear a memory; its person (or the owner) decides."""
        item = await svc.set_visibility(auth.caller(ctx), memory_id, visibility)
        return rendered(item, render_visibility(item))

    @mcp.tool(annotations=DESTRUCTIVE)
    async def memory_delete(ctx: Context, memory_id: MemoryId) -> Annotated[CallToolResult, DeleteResult]:
        """Delete one memory (its history records the deletion)."""
        await svc.delete(auth.caller(ctx), memory_id)
        result = DeleteResult(id=memory_id, deleted=True)
        return rendered(result, render_deleted(result))

    @mcp.tool(annotations=READ_ONLY)
    async def memory_history(ctx: Context, memory_id: MemoryId) -> Annotated[CallToolResult, HistoryResult]:
        """How a memory changed: ADD, UPDATE (old → new), DELETE, with times."""
        result = await svc.history_of(auth.caller(ctx), memory_id)
        return rendered(result, render_history(result))

    @mcp.tool(annotations=DESTRUCTIVE)
    async def memory_forget_user(ctx: Context, user_id: params.NamedUserId) -> Annotated[CallToolResult, ForgetResult]:
        """Erase every trace of a user: memories, vectors, history and exports. Cannot be undone."""
        n, events, files = await svc.forget_user(auth.caller(ctx), user_id)
        result = ForgetResult(user_id=user_id, memories_deleted=n, history_events_deleted=events, exports_deleted=files)
        return rendered(result, render_forgot(result))

    @mcp.tool(annotations=DESTRUCTIVE, meta=OWNER_ONLY)
    async def memory_reassign_user(
        ctx: Context,
        user_id: Annotated[params.NamedUserId, Field(description="The user whose memories move.")],
        into_user_id: Annotated[params.NamedUserId, Field(description="The user they move to.")],
    ) -> Annotated[CallToolResult, ReassignResult]:
        """Move every memory of a user (all scopes, with their history) to another user, all or none:
        a provisional user found to be a known one. Owner only."""
        n = await svc.reassign_user(auth.caller(ctx), user_id, into_user_id)
        result = ReassignResult(user_id=user_id, into_user_id=into_user_id, memories_moved=n)
        return rendered(result, render_reassigned(result))

    @mcp.tool(annotations=WRITE)
    async def memory_export(
        ctx: Context,
        user_id: UserId = None,
        format: Literal["markdown", "json"] = "markdown",
        scope: Annotated[Scope | None, Field(description="Only this scope (default: all the user's).")] = None,
    ) -> Annotated[CallToolResult, ExportResult]:
        """Export a user's memories (markdown or JSON), keep it until the user is forgotten, and return it cut
        at a size budget; the whole export is at the returned `uri`."""
        result = await svc.export(auth.caller(ctx), user_id, format, scope)
        return rendered(result, render_export(result))

    @mcp.tool(annotations=WRITE)
    async def tool_call_record(
        ctx: Context,
        tool: Annotated[str, Field(min_length=1, max_length=200, description="The tool that was called.")],
        arguments: Annotated[ToolArguments | None, Field(description="What it was called with.")] = None,
        outcome: Annotated[str, Field(max_length=4000, description="What came back, or the error.")] = "",
        success: bool = True,
        latency_ms: Annotated[float | None, Field(ge=0)] = None,
        task: Annotated[str, Field(max_length=2000, description="What the call was for, in words.")] = "",
        user_id: UserId = None,
        session_id: SessionId = None,
    ) -> Annotated[CallToolResult, AddResult]:
        """Remember a tool call and how it went, so later calls for similar tasks can do better."""
        item = tool_call_item(tool, arguments or {}, outcome, success, latency_ms, task, user_id, session_id)
        result = await svc.add([item], auth.caller(ctx))
        return rendered(result, render_add(result))

    @mcp.tool(annotations=READ_ONLY)
    async def tool_experience_search(
        ctx: Context,
        task: Annotated[str, Field(min_length=1, max_length=2000, description="The task at hand, in words.")],
        tool: Annotated[str | None, Field(max_length=200, description="Only calls of this tool.")] = None,
        user_id: UserId = None,
        limit: Annotated[int, Field(ge=1, le=50)] = 5,
    ) -> Annotated[CallToolResult, ToolExperienceResult]:
        """Past tool calls for similar tasks: what was called, with what, and how it went."""
        where = svc.visible(auth.caller(ctx), user_id, ["tool"])
        if tool:
            where.equals["tool"] = tool
        result = ToolExperienceResult(results=await svc.reading.tool_experiences(where, task, limit))
        return rendered(result, render_experiences(result))

    @mcp.tool(annotations=READ_ONLY)
    async def followup_list(
        ctx: Context,
        user_id: UserId = None,
        due_before: Annotated[datetime | None, Field(description="Only follow-ups due before this time.")] = None,
        include_done: Annotated[bool, Field(description="Also those raised, done or cancelled.")] = False,
        limit: Annotated[int, Field(ge=1, le=200)] = 50,
        cursor: params.Cursor = None,
        present: Annotated[People | None, Field(description=PRESENT_HELP + " Only follow-ups all of them may hear "
                                                "(their source memory's visibility; default: no audience filter).")]
        = None,
    ) -> Annotated[CallToolResult, FollowupList]:
        """What a person said will happen or they will do, soonest due first, each with its source memory."""
        result = await svc.planning.page(svc.user_of(auth.caller(ctx), user_id), due_before, include_done, limit, cursor,
                                        present)
        return rendered(result, render_followups(result.results))

    @mcp.tool(annotations=RESETS)
    async def followup_update(
        ctx: Context,
        followup_id: Annotated[str, Field(max_length=64, description="A follow-up id, as followup_list returns it.")],
        status: Annotated[FollowupStatus | None, Field(description="'raised' (brought up with the person), 'done', "
                                                       "'cancelled', or 'open' again.")] = None,
        due_at: Annotated[datetime | None, Field(description="A new due time (ISO-8601, with its zone).")] = None,
    ) -> Annotated[CallToolResult, Followup]:
        """Mark a follow-up done or cancelled, or move it to a new due time."""
        updated = await svc.planning.update(auth.caller(ctx), followup_id, status, due_at)
        return rendered(updated, render_followups([updated]))

    @mcp.tool(annotations=RESETS)
    async def memory_reflect(
        ctx: Context,
        user_id: UserId = None,
        avatar: Annotated[bool, Field(description="Instead, the avatar's own knowledge across people (owner only): "
                                      "entity cards from what at least two people shared with everyone.")] = False,
    ) -> Annotated[CallToolResult, ReflectResult]:
        """Derive what lasts from a person's memories — insights written by the LLM, or without one an entity
        card per name they mention, and a lesson per tool from their recorded calls — each citing its sources
        and as private as they are; recalled like memories, updated on the next reflection, re-derived or
        removed when a source changes."""
        result = await svc.reflect(auth.caller(ctx), user_id, avatar)
        return rendered(result, render_reflect(result))

    @mcp.resource("memory://users/{user_id}/memories", mime_type="text/markdown")
    async def user_memories(user_id: str, ctx: Context) -> str:
        """A user's memories as markdown (the most recent 500)."""
        where = svc.visible(auth.caller(ctx), user_id, SCOPES)
        items, _, total = await svc.reading.newest_page(where, 500, None)
        items.sort(key=lambda m: (m.occurred_at or "", m.created_at))
        return export_markdown(items) + (f"\n_{total - len(items)} more not shown._\n" if total > len(items) else "")

    @mcp.resource("memory://users/{user_id}/exports/{export_name}", mime_type="text/plain")
    async def user_export(user_id: str, export_name: str, ctx: Context) -> str:
        """A whole export memory_export made of a user's memories (markdown or JSON, as its name ends)."""
        return await svc.read_export(auth.caller(ctx), user_id, export_name)

    @mcp.prompt()
    async def recall(user_id: str, topic: str, ctx: Context) -> str:
        """What you remember about a user on a topic, ready to put in context."""
        where = svc.visible(auth.caller(ctx), user_id, SEARCH_SCOPES)
        items = await svc.reading.search(where, topic, 10, 0)
        lines = "\n".join(f"- {m.content}" + (f" (on {m.occurred_at[:10]})" if m.occurred_at else "") for m in items)
        return (f"Here is what you remember about user '{user_id}' that may bear on \"{topic}\":\n"
                f"{lines or '- nothing yet'}\nUse it where it helps; do not recite it.")

    return ServerSpec(name="memory", mcp=mcp, startup=svc.start, shutdown=svc.close, health=svc.health,
                      ready=lambda: svc.ready)
