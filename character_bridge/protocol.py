"""The character protocol: one versioned envelope that every renderer and adapter reads.

Each event is `{v, seq, ts, utterance_id, kind, ...}`; `kind` picks the payload. The models are
the single source of truth: the hub serialises them, the viewer and adapters read them, and
`schema()` exports them as JSON Schema for renderer authors (`alphaavatar character schema`).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

PROTOCOL_VERSION = 1

EMOTIONS: tuple[str, ...] = (
    "happy", "sad", "angry", "think", "surprised", "awkward", "question", "curious", "neutral",
)
STATES: tuple[str, ...] = ("idle", "listening", "thinking", "speaking")
VISEMES: tuple[str, ...] = (
    "sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou",
)
FRAME_MS = 20

Emotion = Literal["happy", "sad", "angry", "think", "surprised", "awkward", "question", "curious", "neutral"]
State = Literal["idle", "listening", "thinking", "speaking"]
Viseme = Literal["sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou"]


class Event(BaseModel):
    """What every character event carries; each event type adds its own fields."""

    model_config = ConfigDict(extra="forbid")

    v: int = Field(default=PROTOCOL_VERSION, description="Protocol version.")
    seq: int = Field(default=0, ge=0, description="Hub-wide sequence number, increasing by one per event.")
    ts: float = Field(default=0.0, description="Send time, Unix epoch milliseconds.")
    utterance_id: str | None = Field(default=None, description="The utterance this event belongs to, if any.")


class ExpressionEvent(Event):
    kind: Literal["expression"] = "expression"
    emotion: Emotion
    intensity: float = Field(default=1.0, ge=0.0, le=1.0)
    fade_in_ms: int = Field(default=150, ge=0, le=10_000)
    fade_out_ms: int = Field(default=300, ge=0, le=10_000)
    duration_ms: int = Field(default=0, ge=0, le=600_000, description="How long to hold; 0 = until the next one.")


class VisemeCue(BaseModel):
    model_config = ConfigDict(extra="forbid")

    t_ms: int = Field(ge=0, description="Start, ms from the start of the utterance.")
    dur_ms: int = Field(ge=0)
    viseme: Viseme


class SpeechEvent(Event):
    """A speech timeline: mouth-open values every `frame_ms`, and/or visemes with times.

    Streaming speech sends several events for one utterance, each with its `start_ms` offset;
    `final` marks the last one.
    """

    kind: Literal["speech"] = "speech"
    text: str = ""
    start_ms: int = Field(default=0, ge=0, description="Offset of `mouth[0]` from the utterance start.")
    frame_ms: int = FRAME_MS
    mouth: list[float] = Field(default_factory=list, description="Mouth openness 0..1, one per frame.")
    visemes: list[VisemeCue] = Field(default_factory=list)
    duration_ms: int = Field(default=0, ge=0, description="Length of the whole utterance, when known.")
    audio_ref: str | None = Field(default=None, description="Where the audio plays from (URL or track id).")
    final: bool = True


class MotionEvent(Event):
    kind: Literal["motion"] = "motion"
    name: str
    intensity: float = Field(default=1.0, ge=0.0, le=1.0)


class GazeEvent(Event):
    kind: Literal["gaze"] = "gaze"
    x: float = Field(ge=-1.0, le=1.0, description="-1 left … 1 right, from the character's viewpoint.")
    y: float = Field(ge=-1.0, le=1.0, description="-1 down … 1 up.")


class ParamEvent(Event):
    kind: Literal["param"] = "param"
    name: str
    value: float


class StateEvent(Event):
    kind: Literal["state"] = "state"
    state: State


class InterruptEvent(Event):
    kind: Literal["interrupt"] = "interrupt"
    reason: str = "interrupted"


CharacterEvent = Annotated[
    ExpressionEvent | SpeechEvent | MotionEvent | GazeEvent | ParamEvent | StateEvent | InterruptEvent,
    Field(discriminator="kind"),
]
EVENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(CharacterEvent)

# Back-pressure classes (see hub.py): these are never dropped ...
RELIABLE_KINDS = frozenset({"expression", "state", "interrupt", "speech", "motion"})
# ... and these are replaced by a newer event with the same key while still queued.
COALESCED_KINDS = frozenset({"param", "gaze"})


def coalesce_key(event: Event) -> str | None:
    """Events with the same key supersede each other in a slow renderer's queue."""
    if isinstance(event, ParamEvent):
        return f"param:{event.name}"
    if isinstance(event, GazeEvent):
        return "gaze"
    return None


def parse_event(data: str | bytes | dict[str, Any]) -> Any:
    """One event from its JSON form (raises pydantic.ValidationError if it is not one)."""
    if isinstance(data, dict):
        return EVENT_ADAPTER.validate_python(data)
    return EVENT_ADAPTER.validate_json(data)


def schema() -> dict[str, Any]:
    """JSON Schema of the envelope (all kinds), for renderer authors."""
    out = EVENT_ADAPTER.json_schema()
    out["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    out["title"] = f"AlphaAvatar character event, protocol v{PROTOCOL_VERSION}"
    out["description"] = (
        "One JSON object per line; a WebSocket message may carry several lines. "
        "The hub sends the current state snapshot first, then live events in `seq` order."
    )
    return out


def schema_json() -> str:
    return json.dumps(schema(), indent=2)
