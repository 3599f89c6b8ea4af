"""Short texts for the character tools' results, for hosts that read only text."""

from __future__ import annotations

from typing import Any

from .models import InterruptResult, Sent, SpeakResult, StatusResult


def _renderers(n: int) -> str:
    return f"{n} renderer{'' if n == 1 else 's'}"


def _what(event: dict[str, Any]) -> str:
    kind = event.get("kind")
    if kind == "expression":
        held = f", held {event['duration_ms']} ms" if event.get("duration_ms") else ""
        return f"expression {event['emotion']} at {event['intensity']:g}{held}"
    if kind == "motion":
        return f"motion {event['name']} at {event['intensity']:g}"
    if kind == "gaze":
        return f"gaze to ({event['x']:g}, {event['y']:g})"
    if kind == "state":
        return f"state {event['state']}"
    if kind == "param":
        return f"{event['name']} = {event['value']:g}"
    return str(kind)


def render_sent(r: Sent) -> str:
    return f"Sent {_what(r.event)} (event {r.seq}) to {_renderers(r.renderers)}."


def render_speak(r: SpeakResult) -> str:
    text = r.text if len(r.text) <= 80 else r.text[:79] + "…"
    timing = "timed from the audio" if r.source == "audio" else "timing estimated from the text"
    lines = [f"Speaking {text!r}: {r.duration_ms / 1000:.2f} s, {timing}, {r.visemes} visemes, "
             f"sent to {_renderers(r.renderers)}."]
    if r.expressions:
        lines.append("Expressions: " + ", ".join(f"{e.emotion} at {e.t_ms} ms" for e in r.expressions) + ".")
    if r.dropped_tags:
        lines.append("Dropped tags (no known emotion): " + ", ".join(r.dropped_tags) + ".")
    return "\n".join(lines)


def render_interrupt(r: InterruptResult) -> str:
    if r.interrupted is None:
        return "Nothing was speaking."
    return f"Stopped {r.interrupted}; {r.cancelled} pending event(s) cancelled."


def render_status(r: StatusResult) -> str:
    state = (r.state.get("state") or {}).get("state", "idle")
    emotion = (r.state.get("expression") or {}).get("emotion", "neutral")
    lines = [f"{_renderers(r.renderers)} connected; {r.published} events sent ({r.coalesced} coalesced, "
             f"{r.disconnected_slow} slow renderers dropped).",
             f"State {state}, expression {emotion}, speaking {r.speaking or 'nothing'}."]
    for a in r.adapters:
        health = "connected" if a.connected else f"not connected ({a.last_error or 'no error yet'})"
        lines.append(f"Adapter {a.name} at {a.url}: {health}, {a.sent} sent.")
    return "\n".join(lines)
