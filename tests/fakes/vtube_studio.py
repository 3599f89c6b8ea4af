"""A local VTube Studio: its public API over WebSocket, as documented by DenchiSoft.

Requests are `{apiName, apiVersion, requestID, messageType, data}`; answers echo the requestID
with `<Name>Response` (or `APIError {errorID, message}`). `AuthenticationTokenRequest` returns
a token (or, with `deny=True`, error 50 as when the user clicks "Deny"); `AuthenticationRequest`
authenticates a session that presents it; every other request needs an authenticated session
(error 8 otherwise). Requests are recorded with their arrival time in `requests`.
`drop_after=N` closes each connection after N recorded requests.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from websockets.asyncio.server import ServerConnection

from tests.fakes.websocket_fake import WebSocketFake


class FakeVTubeStudio(WebSocketFake):
    def __init__(self, deny: bool = False, drop_after: int | None = None):
        super().__init__()
        self.deny = deny
        self.drop_after = drop_after
        self.tokens: set[str] = set()
        self.token_requests = 0
        self.connections = 0
        self.requests: list[tuple[float, str, dict[str, Any]]] = []

    @staticmethod
    def _answer(req: dict[str, Any], kind: str, data: dict[str, Any]) -> str:
        return json.dumps({"apiName": "VTubeStudioPublicAPI", "apiVersion": "1.0", "timestamp": int(time.time() * 1000),
                           "requestID": req.get("requestID", ""), "messageType": kind, "data": data})

    async def _handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        authenticated = False
        counted = 0
        async for raw in ws:
            req = json.loads(raw)
            kind, data = req.get("messageType", ""), req.get("data") or {}
            if req.get("apiName") != "VTubeStudioPublicAPI":
                await ws.send(self._answer(req, "APIError", {"errorID": 1, "message": "API name invalid"}))
                continue
            if kind == "AuthenticationTokenRequest":
                self.token_requests += 1
                if self.deny:
                    await ws.send(self._answer(req, "APIError", {"errorID": 50, "message": "User has denied API access for your plugin."}))
                    continue
                token = uuid.uuid4().hex
                self.tokens.add(token)
                await ws.send(self._answer(req, "AuthenticationTokenResponse", {"authenticationToken": token}))
                continue
            if kind == "AuthenticationRequest":
                authenticated = data.get("authenticationToken") in self.tokens
                await ws.send(self._answer(req, "AuthenticationResponse", {
                    "authenticated": authenticated,
                    "reason": "Token valid. The plugin is authenticated." if authenticated else "Token invalid."}))
                continue
            if not authenticated:
                await ws.send(self._answer(req, "APIError", {"errorID": 8, "message": "Plugin not authenticated."}))
                continue
            self.requests.append((time.monotonic(), kind, data))
            await ws.send(self._answer(req, kind.replace("Request", "Response"), {}))
            counted += 1
            if self.drop_after is not None and counted >= self.drop_after:
                await ws.close(1011, "dropped by the fake")
                return

    def of_type(self, kind: str) -> list[tuple[float, dict[str, Any]]]:
        return [(t, d) for t, k, d in self.requests if k == kind]
