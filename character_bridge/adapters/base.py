"""An adapter is a hub subscriber with a WebSocket to a renderer, kept alive with back-off.

`run()` loops: connect → protocol handshake → subscribe to the hub (the snapshot comes first,
so a reconnected renderer is brought up to date) → translate events until the connection drops
→ wait (exponential back-off with jitter, reset after a good session) → again.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import random
from dataclasses import dataclass
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from ..background import Background
from ..hub import Hub, Subscriber
from ..protocol import Event

log = logging.getLogger(__name__)


class AdapterError(RuntimeError):
    """The renderer answered, but not as its protocol says (or refused us)."""


@dataclass
class Backoff:
    initial: float = 0.5
    factor: float = 2.0
    maximum: float = 30.0
    jitter: float = 0.2
    attempt: int = 0

    def next(self) -> float:
        delay = min(self.maximum, self.initial * self.factor ** self.attempt)
        self.attempt += 1
        return delay * (1 + random.uniform(-self.jitter, self.jitter))

    def reset(self) -> None:
        self.attempt = 0


class Adapter(Background):
    name = "adapter"

    def __init__(self, hub: Hub, url: str, backoff: Backoff | None = None, open_timeout: float = 5.0):
        self.hub = hub
        self.url = url
        self.backoff = backoff or Backoff()
        self.open_timeout = open_timeout
        self.connected = False
        self.connects = 0
        self.reconnects = 0
        self.sent = 0
        self.last_error: str | None = None
        self.task_name = f"adapter-{self.name}"

    async def run(self) -> None:
        while True:
            sub: Subscriber | None = None
            try:
                async with websockets.connect(self.url, open_timeout=self.open_timeout, max_size=2**22) as ws:
                    await self.handshake(ws)
                    self.connected = True
                    self.connects += 1
                    self.last_error = None
                    self.backoff.reset()
                    log.info("%s adapter connected to %s", self.name, self.url)
                    sub = self.hub.subscribe(self.name, kind="adapter")
                    await self.session(ws, sub)
            except asyncio.CancelledError:
                raise
            except (OSError, TimeoutError, websockets.exceptions.WebSocketException, AdapterError, ValueError) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"[:300]
            finally:
                if sub is not None:
                    self.hub.unsubscribe(sub)
                if self.connected:
                    self.connected = False
                    log.warning("%s adapter lost %s: %s", self.name, self.url, self.last_error)
            self.reconnects += 1
            await asyncio.sleep(self.backoff.next())

    async def session(self, ws: ClientConnection, sub: Subscriber) -> None:
        """Forward events until the connection ends; `receive` and `tick` run beside it."""
        async def forward() -> None:
            while True:
                for slot in await sub.take():
                    for message in self.translate(slot.event):
                        await ws.send(message)
                        self.sent += 1

        tasks = [asyncio.create_task(forward()), asyncio.create_task(self.receive(ws)),
                 asyncio.create_task(self.tick(ws))]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # re-raise what ended the session
            self.last_error = "closed by the renderer"
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- protocol hooks --------------------------------------------------------------------------------
    @abc.abstractmethod
    async def handshake(self, ws: ClientConnection) -> None:
        """Authenticate / announce; raise AdapterError if the renderer refuses."""

    @abc.abstractmethod
    def translate(self, event: Event) -> list[str]:
        """The renderer's messages for one of our events (may be none)."""

    async def receive(self, ws: ClientConnection) -> None:
        """Read what the renderer sends (answers, heartbeats) until it closes."""
        async for _ in ws:
            pass

    async def tick(self, ws: ClientConnection) -> None:
        """Periodic work while connected (heartbeats, held values)."""
        await asyncio.Event().wait()

    def health(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url, "connected": self.connected, "connects": self.connects,
                "reconnects": self.reconnects, "sent": self.sent, "last_error": self.last_error}
