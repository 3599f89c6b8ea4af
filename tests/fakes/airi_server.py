"""A local AIRI server-runtime: the `@proj-airi/server-sdk` WebSocket protocol at `/ws`.

As AIRI's runtime does: messages are superjson (`{"json": event}`) or plain JSON events
`{type, data, metadata}`; with a token, a peer must send `module:authenticate` first and gets
`module:authenticated {authenticated}` (or an `error`); `module:announce` is answered with
`module:announced` and a `registry:modules:sync`; `transport:connection:heartbeat` pings get
pongs. Every other event is recorded in `received`. `drop_once_after=N` closes the first
connection after N recorded events, to exercise one reconnect (later connections stay up, so a
test can see the adapter connected again).
"""

from __future__ import annotations

import json
import time
from typing import Any

from websockets.asyncio.server import ServerConnection

from tests.fakes.websocket_fake import WebSocketFake


def _encode(event: dict[str, Any]) -> str:
    return json.dumps({"json": event})


def _decode(raw: str | bytes) -> dict[str, Any]:
    data = json.loads(raw)
    if isinstance(data, dict) and "type" not in data and isinstance(data.get("json"), dict):
        data = data["json"]
    return data  # type: ignore[no-any-return]


class FakeAiri(WebSocketFake):
    path = "/ws"

    def __init__(self, token: str | None = None, drop_once_after: int | None = None):
        super().__init__()
        self.token = token
        self.drop_once_after = drop_once_after
        self.received: list[dict[str, Any]] = []
        self.announced: list[dict[str, Any]] = []
        self.connections = 0
        self.pongs = 0
        self.refused = 0

    async def _handle(self, ws: ServerConnection) -> None:
        if ws.request is None or ws.request.path != "/ws":
            await ws.close(1008, "not found")
            return
        self.connections += 1
        drop_after = self.drop_once_after if self.connections == 1 else None
        authenticated = self.token is None
        counted = 0
        async for raw in ws:
            event = _decode(raw)
            kind, data = event.get("type"), event.get("data") or {}
            if kind == "module:authenticate":
                authenticated = data.get("token") == self.token
                if not authenticated:
                    self.refused += 1
                await ws.send(_encode({"type": "module:authenticated", "data": {"authenticated": authenticated}}))
                continue
            if not authenticated:
                await ws.send(_encode({"type": "error", "data": {"message": "not authenticated"}}))
                continue
            if kind == "transport:connection:heartbeat":
                if data.get("kind") == "ping":
                    await ws.send(_encode({"type": "transport:connection:heartbeat",
                                           "data": {"kind": "pong", "message": "\U0001f49b", "at": int(time.time() * 1000)}}))
                else:
                    self.pongs += 1
                continue
            if kind == "module:announce":
                self.announced.append(data)
                # a ping before the answer: the module must answer it while it waits
                await ws.send(_encode({"type": "transport:connection:heartbeat",
                                       "data": {"kind": "ping", "message": "\U0001fa75"}}))
                await ws.send(_encode({"type": "module:announced",
                                       "data": {"name": data.get("name"), "identity": data.get("identity")}}))
                await ws.send(_encode({"type": "registry:modules:sync",
                                       "data": {"modules": [{"name": data.get("name"), "identity": data.get("identity")}]}}))
                continue
            self.received.append(event)
            counted += 1
            if drop_after is not None and counted >= drop_after:
                await ws.close(1011, "dropped by the fake")
                return

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [e["data"] for e in self.received if e.get("type") == f"alphaavatar:character:{kind}"]
