"""What the agent relies on from the servers: the names of the tools it calls, and views of the
outputs it reads.

The agent reaches the servers only through MCP and imports none of their models: these views
are its own, with only the fields it reads (anything else in an output is ignored). A server
that renames or retypes one of them breaks tests/test_agent_contracts.py, which checks every
view against the live server's published outputSchema and every name against its tools/list,
instead of silently breaking the agent.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# -- _meta keys of the delegation (mcp_servers.core.auth / .consent) -----------------------------
ACT_AS = "alphaavatar/act_as"  # request: the user the owner's call runs as (the speaker)
CALL_MARK = "alphaavatar/call"  # request: our mark on a call, echoed in the server's question
OWNER_ONLY = "alphaavatar/owner_only"  # tool: no user may call it, so the LLM is never offered it

# -- tool names -------------------------------------------------------------------------------
# memory
MEMORY_SEARCH = "memory_search"
MEMORY_ADD = "memory_add"
MEMORY_REASSIGN_USER = "memory_reassign_user"
TOOL_CALL_RECORD = "tool_call_record"
TOOL_EXPERIENCE_SEARCH = "tool_experience_search"
FOLLOWUP_LIST = "followup_list"
FOLLOWUP_UPDATE = "followup_update"
MEMORY_REFLECT = "memory_reflect"
# persona
SPEAKER_IDENTIFY = "speaker_identify"
SPEAKER_SEGMENT = "speaker_segment"  # who spoke when: a turn that holds two voices
IDENTIFY = "identify"  # voice and face together
PROFILE_GET = "profile_get"
USER_LIST = "user_list"
USER_RENAME = "user_rename"
USER_MERGE = "user_merge"
# character
CHARACTER_STATE = "character_state"
CHARACTER_EXPRESS = "character_express"
CHARACTER_SPEAK = "character_speak"
CHARACTER_GAZE = "character_gaze"
# research (shown to the LLM up front by default)
RESEARCH = "research"
WEB_SEARCH = "web_search"

TOOLS = (MEMORY_SEARCH, MEMORY_ADD, MEMORY_REASSIGN_USER, TOOL_CALL_RECORD, TOOL_EXPERIENCE_SEARCH,
         FOLLOWUP_LIST, FOLLOWUP_UPDATE, MEMORY_REFLECT,
         SPEAKER_IDENTIFY, SPEAKER_SEGMENT, IDENTIFY, PROFILE_GET, USER_LIST, USER_RENAME, USER_MERGE,
         CHARACTER_STATE, CHARACTER_EXPRESS, CHARACTER_SPEAK, CHARACTER_GAZE, RESEARCH, WEB_SEARCH)

Verdict = Literal["known", "uncertain", "unknown"]


class View(BaseModel):
    """A view of one server output: the fields the agent reads; the rest is ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)


# -- memory -----------------------------------------------------------------------------------
class Memory(View):
    id: str
    content: str
    occurred_at: str | None = None
    score: float | None = None
    source: str = "verbatim"  # "reflection": derived from other memories (an entity card, an insight)


class MemorySearch(View):
    """memory_search"""

    results: list[Memory] = Field(default_factory=list)


class Experience(View):
    tool: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    outcome: str | None = None
    success: bool
    lesson: str | None = None  # drawn from several past calls (memory_reflect)


class ExperienceSearch(View):
    """tool_experience_search"""

    results: list[Experience] = Field(default_factory=list)


class Followup(View):
    id: str
    text: str
    kind: str
    due_at: str


class Followups(View):
    """followup_list"""

    results: list[Followup] = Field(default_factory=list)


# -- persona: who is speaking -----------------------------------------------------------------
class Candidate(View):
    user_id: str
    score: float


class Identified(View):
    """What every identification says: the decision, and who (with the score) when someone."""

    decision: Verdict
    user_id: str | None = None
    name: str | None = None
    score: float | None = None


class Match(Identified):
    """One modality's identification (a face in `identify`)."""

    provisional: bool | None = None
    unknown_below: float
    candidates: list[Candidate] = Field(default_factory=list)

    def resembles(self) -> list[str]:
        """The users it came close to: candidates at or above the 'unknown' level."""
        return [c.user_id for c in self.candidates if c.score >= self.unknown_below]


class VoiceMatch(Match):
    """speaker_identify (and the voice part of `identify`)."""

    created_user_id: str | None = None
    speech_seconds: float | None = None


class Segment(View):
    start: float
    end: float
    speaker: str  # S1, S2, … in order of first speech


class SegmentSpeaker(VoiceMatch):
    speaker: str


class Segments(View):
    """speaker_segment: who spoke when, and each speaker identified on all of their speech."""

    segments: list[Segment] = Field(default_factory=list)
    speakers: list[SegmentSpeaker] = Field(default_factory=list)


class Identification(Identified):
    """identify: the fused verdict, and each modality's own."""

    created_user_id: str | None = None
    voice: VoiceMatch | None = None
    face: Match | None = None

    @classmethod
    def of_voice(cls, voice: VoiceMatch) -> Identification:
        """A voice-only identification (speaker_identify) in the same shape."""
        return cls(decision=voice.decision, user_id=voice.user_id, name=voice.name, score=voice.score,
                   created_user_id=voice.created_user_id, voice=voice)


class UserRef(View):
    user_id: str
    name: str


class UserPage(View):
    """user_list"""

    users: list[UserRef]
    next_cursor: str | None = None


# -- persona: profiles ------------------------------------------------------------------------
class Profile(View):
    """profile_get: who it is, and every section persona has (whatever they are: a new section reaches
    the LLM without a change here) for the turn's context, values only."""

    model_config = ConfigDict(extra="allow")

    user_id: str
    name: str
    provisional: bool

    def plain(self) -> dict[str, Any]:
        """The profile for the LLM's context: each fact as its value, empty sections left out."""
        return _plain(self.model_dump(exclude_none=True))


FACT_KEYS = frozenset({"value", "source", "last_seen"})  # what makes a profile value a fact, not a section


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        if FACT_KEYS <= set(value):
            return value["value"]
        out = {k: _plain(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, "", [], {})}
    if isinstance(value, list):
        return [c for c in (_plain(v) for v in value) if c not in (None, "", [], {})]
    return value


# The output each tool is read through (tests/test_agent_contracts.py checks them all).
VIEWS: dict[str, type[View]] = {
    MEMORY_SEARCH: MemorySearch,
    TOOL_EXPERIENCE_SEARCH: ExperienceSearch,
    FOLLOWUP_LIST: Followups,
    SPEAKER_IDENTIFY: VoiceMatch,
    SPEAKER_SEGMENT: Segments,
    IDENTIFY: Identification,
    USER_LIST: UserPage,
    PROFILE_GET: Profile,
}
