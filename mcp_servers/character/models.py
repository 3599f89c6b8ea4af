"""Structured results of the character tools."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Sent(BaseModel):
    """An event the hub sent."""

    seq: int = Field(description="The event's sequence number on the hub.")
    kind: str
    renderers: int = Field(description="Renderers connected to the hub when it was sent.")
    event: dict[str, Any]


class TimedEmotion(BaseModel):
    t_ms: int
    emotion: str
    intensity: float


class SpeakResult(BaseModel):
    utterance_id: str
    text: str = Field(description="The text with emotion tags removed: what TTS should say.")
    source: str = Field(description="'audio' (envelope from the audio) or 'text' (estimated from phonemes).")
    duration_ms: int
    frames: int = Field(description="20 ms mouth-open frames in the timeline.")
    visemes: int
    expressions: list[TimedEmotion]
    dropped_tags: list[str] = Field(description="Tags that named no known emotion.")
    renderers: int


class InterruptResult(BaseModel):
    interrupted: str | None = Field(description="The utterance that was stopped, if one was playing.")
    cancelled: int = Field(description="Timed events that will no longer be sent.")
    seq: int


class AdapterHealth(BaseModel):
    name: str
    url: str
    connected: bool
    connects: int
    reconnects: int
    sent: int
    last_error: str | None


class StatusResult(BaseModel):
    renderers: int
    published: int
    coalesced: int
    disconnected_slow: int
    speaking: str | None
    state: dict[str, Any]
    subscribers: list[dict[str, Any]]
    adapters: list[AdapterHealth]
    last_events: list[dict[str, Any]]
