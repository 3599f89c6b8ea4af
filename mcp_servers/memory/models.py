"""Tool inputs and outputs of the memory server (the MCP boundary)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from mcp_servers.core.bounds import StoredObject
from mcp_servers.core.visibility import HEARD_HELP, VISIBILITY_HELP, People, Visibility

Scope = Literal["avatar", "user", "tool", "session"]
MAX_CONTENT = 20_000
MAX_BATCH = 1_000


class Message(BaseModel):
    role: Literal["user", "assistant", "system", "tool"]
    content: str = Field(max_length=MAX_CONTENT)
    name: str | None = None


class AddItem(BaseModel):
    """One memory to add: `content` text, or a chat `messages` list."""

    content: str | None = Field(default=None, max_length=MAX_CONTENT, description="The text to remember.")
    messages: list[Message] | None = Field(default=None, max_length=200, description="A chat to remember.")
    scope: Scope = "user"
    user_id: str | None = Field(default=None, max_length=200)
    session_id: str | None = Field(default=None, max_length=200)
    occurred_at: datetime | None = Field(default=None, description="ISO-8601: when it was said (default now).")
    metadata: StoredObject = Field(default_factory=dict)
    infer: bool = Field(
        default=True,
        description="With an LLM configured, extract facts and reconcile them with what is stored; "
        "false stores the text verbatim. Without an LLM, text is always stored verbatim.",
    )
    visibility: Visibility | None = Field(default=None, description=VISIBILITY_HELP)
    present: People = Field(default_factory=list, description=HEARD_HELP)


class MemoryItem(BaseModel):
    id: str
    content: str
    scope: Scope
    user_id: str | None = None
    session_id: str | None = None
    occurred_at: str | None = None
    created_at: str
    updated_at: str
    source: str = "verbatim"
    metadata: dict[str, Any] = Field(default_factory=dict)
    visibility: Visibility = "private"
    heard_by: list[str] = Field(default_factory=list, description=HEARD_HELP)
    derived_from: list[str] = Field(default_factory=list, description="A derived memory (source 'reflection'): "
                                    "the memories it was derived from; it goes when they change or go.")
    score: float | None = None
    relevant: bool | None = Field(default=None, description="memory_search only: it shares a word with the query "
                                  "or is closer in meaning than unrelated memories come; false: only the nearest "
                                  "of what there is.")


class AddEvent(BaseModel):
    id: str
    content: str
    event: Literal["ADD", "UPDATE", "DELETE", "DUPLICATE"]
    previous: str | None = None


class AddResult(BaseModel):
    results: list[AddEvent]
    mode: str = Field(description="'verbatim' (stored as given) or 'extracted' (LLM facts, reconciled).")
    note: str | None = None


class SearchResult(BaseModel):
    results: list[MemoryItem]
    next_cursor: str | None = None


class ListResult(BaseModel):
    results: list[MemoryItem]
    next_cursor: str | None = None
    total: int


class HistoryEvent(BaseModel):
    event: str
    old: str | None = None
    new: str | None = None
    at: str
    actor: str | None = None


class HistoryResult(BaseModel):
    id: str
    events: list[HistoryEvent]


class DeleteResult(BaseModel):
    id: str
    deleted: bool


class ForgetResult(BaseModel):
    user_id: str
    memories_deleted: int
    history_events_deleted: int
    exports_deleted: int


class ReassignResult(BaseModel):
    user_id: str
    into_user_id: str
    memories_moved: int


class ExportResult(BaseModel):
    format: Literal["markdown", "json"]
    path: str | None = Field(description="The file the full export was written to (erased by memory_forget_user); "
                             "none when the export is kept in the Qdrant deployment.")
    uri: str = Field(description="The resource to read the full export from, through any replica of this server.")
    count: int
    content: str = Field(description="The export itself, cut at a token budget; `uri` has everything.")
    truncated: bool


class ToolExperience(BaseModel):
    id: str
    tool: str
    task: str | None = None
    arguments: dict[str, Any] = Field(default_factory=dict)
    outcome: str | None = None
    success: bool
    latency_ms: float | None = None
    occurred_at: str | None = None
    score: float | None = None
    lesson: str | None = Field(default=None, description="Set on a lesson drawn from several past calls of the tool "
                               "(memory_reflect): what they were for, how often they worked, why they failed.")


class ToolExperienceResult(BaseModel):
    results: list[ToolExperience]


FollowupStatus = Literal["open", "raised", "done", "cancelled"]


class Followup(BaseModel):
    id: str
    user_id: str
    memory_id: str = Field(description="The memory it was found in.")
    text: str = Field(description="What was said.")
    kind: str = Field(description="'reminder' (remind me ...) or 'event' (a plan or a fixed date).")
    due_at: str = Field(description="When to come back to it, ISO-8601 in the person's time zone.")
    status: FollowupStatus = Field(description="'open' (to come back to), 'raised' (brought up with the person), "
                                   "'done' or 'cancelled'.")
    visibility: Visibility = Field(default="private", description="Who may hear it: its source memory's visibility.")
    heard_by: list[str] = Field(default_factory=list, description="Its source memory's: " + HEARD_HELP)
    created_at: str
    updated_at: str


class FollowupList(BaseModel):
    results: list[Followup]
    next_cursor: str | None = None
    total: int


class ReflectEvent(BaseModel):
    id: str
    event: Literal["ADD", "UPDATE", "DELETE", "UNCHANGED"]
    kind: str = Field(description="'entity_card' (no LLM), 'insight' (written by the LLM) or 'tool_lesson' (counted "
                      "from the person's recorded tool calls).")
    about: str = Field(description="Its first line.")
    derived_from: list[str] = Field(description="The memories it rests on.")
    visibility: Visibility


class ReflectResult(BaseModel):
    user_id: str | None = Field(description="Whose memories were reflected on; null: the avatar's, across people.")
    mode: Literal["entity_cards", "llm"]
    results: list[ReflectEvent]
    note: str | None = None
