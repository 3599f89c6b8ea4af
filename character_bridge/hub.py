"""The hub: fans character events out to every renderer over WebSocket, and to in-process sinks.

Back-pressure policy (per subscriber, bounded queue of `queue_size` pending events):

- `expression`, `state`, `interrupt`, `speech`, `motion` are never dropped. A renderer that falls
  `queue_size` of them behind is disconnected (close code 1013, "try again later") instead of
  silently missing events; when it reconnects it receives the current snapshot first.
- `param` (including mouth frames, `param mouth_open`) and `gaze` are coalesced: a newer event
  with the same key replaces the queued one in place, so a slow renderer gets the latest value
  and never a backlog. Counts of sent and coalesced events are kept per subscriber.

Each event is serialised once and shared by all renderers; a renderer receives one WebSocket
text message per wake-up, holding one or more events as JSON lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import count
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from .protocol import Event, InterruptEvent, SpeechEvent, coalesce_key

log = logging.getLogger(__name__)

DEFAULT_QUEUE_SIZE = 512
MAX_INCOMING_BYTES = 64 * 1024
RECENT = 20


@dataclass
class _Slot:
    event: Event
    line: str
    key: str | None


@dataclass
class Subscriber:
    """One consumer of the event stream with its own bounded queue (a renderer or a sink)."""

    name: str
    kind: str
    queue_size: int
    connected_at: float = field(default_factory=time.time)
    sent: int = 0
    coalesced: int = 0
    overflowed: bool = False
    _slots: deque[_Slot] = field(default_factory=deque)
    _by_key: dict[str, _Slot] = field(default_factory=dict)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    def put(self, slot: _Slot) -> None:
        if slot.key is not None and (queued := self._by_key.get(slot.key)) is not None:
            queued.event, queued.line = slot.event, slot.line
            self.coalesced += 1
            return
        if len(self._slots) >= self.queue_size:
            self.overflowed = True
            self._wake.set()
            return
        fresh = _Slot(slot.event, slot.line, slot.key)
        self._slots.append(fresh)
        if fresh.key is not None:
            self._by_key[fresh.key] = fresh
        self._wake.set()

    async def take(self) -> list[_Slot]:
        """Wait for events, then take everything queued (oldest first)."""
        while not self._slots and not self.overflowed:
            self._wake.clear()
            await self._wake.wait()
        slots = list(self._slots)
        self._slots.clear()
        self._by_key.clear()
        self.sent += len(slots)
        return slots

    @property
    def queued(self) -> int:
        return len(self._slots)

    def stats(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "sent": self.sent, "coalesced": self.coalesced,
                "queued": self.queued, "connected_s": round(time.time() - self.connected_at, 1)}


Admit = Callable[[WebSocket], bool]  # may this connection watch the character?


class Hub:
    """Publishes events in `seq` order to every subscriber; keeps the state a late joiner needs."""

    def __init__(self, queue_size: int = DEFAULT_QUEUE_SIZE, admit: Admit | None = None,
                 subprotocol: str | None = None):
        self.queue_size = queue_size
        self.admit = admit
        self.subprotocol = subprotocol  # answered when a page offers it (its token rides beside it)
        self._seq = count(1)
        self._subs: list[Subscriber] = []
        self._snapshot: dict[str, _Slot] = {}
        self._recent: deque[dict[str, Any]] = deque(maxlen=RECENT)
        self.published = 0
        self.disconnected_slow = 0

    # -- publishing ------------------------------------------------------------------------------
    def publish(self, event: Event) -> Event:
        """Stamp `seq`/`ts` and queue the event for every subscriber (never blocks)."""
        event.seq = next(self._seq)
        event.ts = time.time() * 1000.0
        slot = _Slot(event, event.model_dump_json(), coalesce_key(event))
        self._remember(slot)
        for sub in self._subs:
            sub.put(slot)
        self.published += 1
        return event

    def _remember(self, slot: _Slot) -> None:
        ev = slot.event
        kind = getattr(ev, "kind", "")
        if kind in ("expression", "state") or slot.key is not None:
            self._snapshot[slot.key or kind] = slot
        if isinstance(ev, InterruptEvent):
            self._snapshot = {k: s for k, s in self._snapshot.items() if k != "param:mouth_open"}
        summary = {k: v for k, v in ev.model_dump().items() if k not in ("v", "mouth", "visemes")}
        if isinstance(ev, SpeechEvent):
            summary.update(frames=len(ev.mouth), visemes=len(ev.visemes), text=ev.text[:80])
        self._recent.append(summary)

    # -- subscribing ------------------------------------------------------------------------------
    def subscribe(self, name: str, kind: str = "sink") -> Subscriber:
        """A new subscriber whose queue starts with the current snapshot."""
        sub = Subscriber(name=name, kind=kind, queue_size=self.queue_size)
        for slot in sorted(self._snapshot.values(), key=lambda s: s.event.seq):
            sub.put(slot)
        self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        with contextlib.suppress(ValueError):
            self._subs.remove(sub)

    # -- the WebSocket endpoint --------------------------------------------------------------------
    async def endpoint(self, websocket: WebSocket) -> None:
        """Starlette WebSocket route: snapshot first, then live events as JSON lines."""
        if self.admit is not None and not self.admit(websocket):
            await websocket.close(code=4403, reason="not allowed to watch this character")
            return
        offered = websocket.scope.get("subprotocols") or []
        await websocket.accept(subprotocol=self.subprotocol if self.subprotocol in offered else None)
        client = websocket.client
        sub = self.subscribe(f"{client.host}:{client.port}" if client else "renderer", kind="websocket")
        sender = asyncio.create_task(self._send_loop(websocket, sub))
        try:
            while True:
                msg = await websocket.receive()
                if msg["type"] == "websocket.disconnect":
                    break
                self._on_message(sub, msg.get("text") or msg.get("bytes") or "")
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            self.unsubscribe(sub)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender

    @staticmethod
    def _on_message(sub: Subscriber, raw: str | bytes) -> None:
        """Renderers may introduce themselves: `{"type": "hello", "name": "..."}`; the rest is ignored."""
        if len(raw) > MAX_INCOMING_BYTES:
            return
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            msg = json.loads(raw)
            if msg.get("type") == "hello" and isinstance(msg.get("name"), str):
                sub.name = msg["name"][:64]

    async def _send_loop(self, websocket: WebSocket, sub: Subscriber) -> None:
        try:
            while True:
                slots = await sub.take()
                if slots:
                    await websocket.send_text("\n".join(s.line for s in slots))
                if sub.overflowed:
                    self.disconnected_slow += 1
                    log.warning("renderer %s fell %d events behind: disconnected", sub.name, sub.queue_size)
                    if websocket.client_state == WebSocketState.CONNECTED:
                        await websocket.close(code=1013, reason="renderer too slow; reconnect for a snapshot")
                    return
        except (WebSocketDisconnect, RuntimeError, OSError):
            return

    # -- introspection ---------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The current state as plain data (expression, state, gaze, params)."""
        out: dict[str, Any] = {"params": {}}
        for key, slot in self._snapshot.items():
            data = slot.event.model_dump(exclude={"v"})
            if key.startswith("param:"):
                out["params"][data["name"]] = data["value"]
            else:
                out[key] = data
        return out

    def stats(self) -> dict[str, Any]:
        renderers = [s.stats() for s in self._subs]
        return {
            "renderers": sum(1 for s in self._subs if s.kind == "websocket"),
            "subscribers": renderers,
            "published": self.published,
            "coalesced": sum(s.coalesced for s in self._subs),
            "disconnected_slow": self.disconnected_slow,
            "last_events": list(self._recent)[-10:],
        }
