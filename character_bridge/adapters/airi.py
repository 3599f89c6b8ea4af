"""AIRI adapter: an AIRI module speaking the `@proj-airi/server-sdk` WebSocket protocol.

Wire format as the SDK sends it: each message is the superjson form `{"json": event}` of an
event `{type, data, metadata: {source, event: {id}}}` (plain JSON is also read). Handshake:
optional `module:authenticate {token}` → `module:authenticated {authenticated}`, then
`module:announce {name, identity, possibleEvents}` → our own `module:announced` (or a
`registry:modules:sync` listing us). Heartbeats: `transport:connection:heartbeat` ping/pong.

AIRI's protocol has no avatar-control event of its own (its stage reads emotions from
`<|ACT {...}|>` tokens in its LLM stream), so each of our events goes out as
`alphaavatar:character:<kind>` with our payload; expressions also carry the ACT token AIRI's
stage understands, and speech the mouth timeline (the original link drove only the mouth).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from websockets.asyncio.client import ClientConnection

from ..hub import Hub
from ..protocol import Event, ExpressionEvent
from .base import Adapter, AdapterError, Backoff

EVENT_PREFIX = "alphaavatar:character:"
HEARTBEAT_PING = "\U0001fa75"  # AIRI's MessageHeartbeat.Ping
HEARTBEAT_PONG = "\U0001f49b"  # AIRI's MessageHeartbeat.Pong


def encode(event: dict[str, Any]) -> str:
    """superjson.stringify of plain JSON data: `{"json": value}`."""
    return json.dumps({"json": event}, ensure_ascii=False)


def decode(raw: str | bytes) -> dict[str, Any]:
    """An AIRI event from superjson or plain JSON text."""
    data = json.loads(raw)
    if isinstance(data, dict) and "type" not in data and isinstance(data.get("json"), dict):
        data = data["json"]
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise AdapterError("AIRI sent something that is not an event")
    return data


class AiriAdapter(Adapter):
    name = "airi"

    def __init__(self, hub: Hub, url: str = "ws://localhost:6121/ws", token: str | None = None,
                 module_name: str = "alphaavatar-character", backoff: Backoff | None = None,
                 heartbeat_s: float = 10.0, handshake_timeout: float = 5.0):
        super().__init__(hub, url, backoff)
        self.token = token
        self.module_name = module_name
        self.heartbeat_s = heartbeat_s
        self.handshake_timeout = handshake_timeout
        self.identity = {"kind": "plugin", "plugin": {"id": module_name}, "id": uuid.uuid4().hex[:12]}

    def _event(self, type_: str, data: dict[str, Any]) -> str:
        return encode({"type": type_, "data": data,
                       "metadata": {"source": self.identity, "event": {"id": uuid.uuid4().hex}}})

    async def handshake(self, ws: ClientConnection) -> None:
        async with asyncio.timeout(self.handshake_timeout):
            if self.token:
                await ws.send(self._event("module:authenticate", {"token": self.token}))
                reply = await self._next(ws, {"module:authenticated", "error"})
                if reply["type"] == "error" or not reply.get("data", {}).get("authenticated"):
                    raise AdapterError(f"AIRI refused the token: {reply.get('data')}")
            kinds = ["expression", "speech", "motion", "gaze", "param", "state", "interrupt"]
            await ws.send(self._event("module:announce", {
                "name": self.module_name, "identity": self.identity,
                "possibleEvents": [EVENT_PREFIX + k for k in kinds], "dependencies": []}))
            while True:
                reply = await self._next(ws, {"module:announced", "registry:modules:sync", "error"})
                data = reply.get("data", {})
                if reply["type"] == "error":
                    raise AdapterError(f"AIRI refused the announcement: {data.get('message')}")
                if reply["type"] == "module:announced" and data.get("identity", {}).get("id") == self.identity["id"]:
                    return
                if reply["type"] == "registry:modules:sync" and any(
                        m.get("identity", {}).get("id") == self.identity["id"] for m in data.get("modules", [])):
                    return

    async def _next(self, ws: ClientConnection, wanted: set[str]) -> dict[str, Any]:
        while True:
            event = decode(await ws.recv())
            if await self._heartbeat(ws, event):
                continue
            if event["type"] in wanted:
                return event

    async def _heartbeat(self, ws: ClientConnection, event: dict[str, Any]) -> bool:
        if event["type"] != "transport:connection:heartbeat":
            return False
        if event.get("data", {}).get("kind") == "ping":
            await ws.send(self._event("transport:connection:heartbeat",
                                      {"kind": "pong", "message": HEARTBEAT_PONG, "at": int(time.time() * 1000)}))
        return True

    async def receive(self, ws: ClientConnection) -> None:
        async for raw in ws:
            try:
                event = decode(raw)
            except (ValueError, AdapterError):
                continue
            await self._heartbeat(ws, event)

    async def tick(self, ws: ClientConnection) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            await ws.send(self._event("transport:connection:heartbeat",
                                      {"kind": "ping", "message": HEARTBEAT_PING, "at": int(time.time() * 1000)}))

    def translate(self, event: Event) -> list[str]:
        data = event.model_dump(mode="json")
        if isinstance(event, ExpressionEvent):
            act = {"emotion": {"name": event.emotion, "intensity": event.intensity}}
            data["act"] = f"<|ACT:{json.dumps(act)}|>"
        return [self._event(EVENT_PREFIX + data["kind"], data)]
