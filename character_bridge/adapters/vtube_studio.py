"""VTube Studio adapter: its public API (WebSocket, default ws://localhost:8001).

Handshake: `AuthenticationTokenRequest` (VTube Studio asks the user to allow the plugin once;
the token is kept in `token_path`) then `AuthenticationRequest`. Emotions become
`HotkeyTriggerRequest` or `ExpressionActivationRequest`, motions hotkeys; parameters, gaze and
the speech mouth timeline become `InjectParameterDataRequest`, resent every `hold_s` (< 1 s)
while a value is held, because VTube Studio hands a parameter back to tracking after ~1 s
without data. All names are configurable through `VTSMapping` (JSON).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import uuid
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from websockets.asyncio.client import ClientConnection

from ..hub import Hub
from ..protocol import (
    EMOTIONS,
    Event,
    ExpressionEvent,
    GazeEvent,
    InterruptEvent,
    MotionEvent,
    ParamEvent,
    SpeechEvent,
    StateEvent,
)
from .base import Adapter, AdapterError, Backoff

log = logging.getLogger(__name__)
API = {"apiName": "VTubeStudioPublicAPI", "apiVersion": "1.0"}


class ParamTarget(BaseModel):
    ids: list[str]
    scale: float = 1.0
    offset: float = 0.0


class EmotionTarget(BaseModel):
    hotkey: str | None = Field(default=None, description="A hotkey ID or name of the model.")
    expression: str | None = Field(default=None, description="An expression file, e.g. happy.exp3.json.")


def _default_params() -> dict[str, ParamTarget]:
    return {
        "mouth_open": ParamTarget(ids=["MouthOpen"]),
        "mouth_smile": ParamTarget(ids=["MouthSmile"], scale=0.5, offset=0.5),
        "eye_open": ParamTarget(ids=["EyeOpenLeft", "EyeOpenRight"]),
        "brow": ParamTarget(ids=["Brows"], scale=0.5, offset=0.5),
        "head_x": ParamTarget(ids=["FaceAngleX"], scale=30.0),
        "head_y": ParamTarget(ids=["FaceAngleY"], scale=30.0),
        "head_z": ParamTarget(ids=["FaceAngleZ"], scale=30.0),
        "body_x": ParamTarget(ids=["FacePositionX"], scale=10.0),
        "gaze_x": ParamTarget(ids=["EyeLeftX", "EyeRightX"]),
        "gaze_y": ParamTarget(ids=["EyeLeftY", "EyeRightY"]),
    }


class VTSMapping(BaseModel):
    """How our events map onto a VTube Studio model."""

    emotions: dict[str, EmotionTarget] = Field(
        default_factory=lambda: {e: EmotionTarget(expression=f"{e}.exp3.json") for e in EMOTIONS if e != "neutral"})
    motions: dict[str, str] = Field(default_factory=dict, description="motion name → hotkey")
    states: dict[str, str] = Field(default_factory=dict, description="state → hotkey")
    params: dict[str, ParamTarget] = Field(default_factory=_default_params)

    @classmethod
    def load(cls, path: Path | None) -> VTSMapping:
        return cls.model_validate_json(path.read_text()) if path else cls()


class VTubeStudioAdapter(Adapter):
    name = "vtube_studio"

    def __init__(self, hub: Hub, url: str = "ws://localhost:8001", token_path: Path | None = None,
                 mapping: VTSMapping | None = None, backoff: Backoff | None = None, hold_s: float = 0.5,
                 plugin_name: str = "AlphaAvatar", plugin_developer: str = "AlphaAvatar MCP",
                 handshake_timeout: float = 60.0):
        super().__init__(hub, url, backoff)
        self.token_path = token_path
        self.mapping = mapping or VTSMapping()
        self.hold_s = hold_s
        self.plugin = {"pluginName": plugin_name, "pluginDeveloper": plugin_developer}
        self.handshake_timeout = handshake_timeout  # the user may take a while to click "Allow"
        self.held: dict[str, float] = {}
        self.active_expression: str | None = None
        self.api_errors = 0
        self._speech: tuple[float, int, list[float]] | None = None  # (start, frame_ms, mouth)

    # -- requests ------------------------------------------------------------------------------------
    @staticmethod
    def request(message_type: str, data: dict[str, Any] | None = None) -> str:
        return json.dumps({**API, "requestID": uuid.uuid4().hex[:16], "messageType": message_type, "data": data or {}})

    async def _ask(self, ws: ClientConnection, message_type: str, data: dict[str, Any]) -> dict[str, Any]:
        await ws.send(self.request(message_type, data))
        reply = json.loads(await ws.recv())
        if reply.get("messageType") == "APIError":
            raise AdapterError(f"VTube Studio: {reply.get('data', {}).get('message', 'API error')}")
        return dict(reply.get("data") or {})

    def _stored_token(self) -> str | None:
        if self.token_path and self.token_path.exists():
            return self.token_path.read_text().strip() or None
        return None

    def _store_token(self, token: str | None) -> None:
        if not self.token_path:
            return
        if token is None:
            self.token_path.unlink(missing_ok=True)
            return
        self.token_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.token_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token)

    async def handshake(self, ws: ClientConnection) -> None:
        async with asyncio.timeout(self.handshake_timeout):
            token = self._stored_token()
            if token is None:
                token = (await self._ask(ws, "AuthenticationTokenRequest", self.plugin)).get("authenticationToken")
                if not token:
                    raise AdapterError("VTube Studio gave no authentication token")
                self._store_token(token)
            answer = await self._ask(ws, "AuthenticationRequest", {**self.plugin, "authenticationToken": token})
            if not answer.get("authenticated"):
                self._store_token(None)  # revoked: ask for a new token next time
                raise AdapterError(f"VTube Studio did not authenticate the plugin: {answer.get('reason', '')}")
        self.active_expression = None

    async def receive(self, ws: ClientConnection) -> None:
        async for raw in ws:
            with contextlib.suppress(ValueError):
                if json.loads(raw).get("messageType") == "APIError":
                    self.api_errors += 1

    # -- translation -----------------------------------------------------------------------------------
    def _set(self, name: str, value: float) -> bool:
        target = self.mapping.params.get(name)
        if target is None:
            return False
        for pid in target.ids:
            self.held[pid] = value * target.scale + target.offset
        return True

    def _inject(self) -> list[str]:
        if not self.held:
            return []
        values = [{"id": k, "value": round(v, 4)} for k, v in self.held.items()]
        return [self.request("InjectParameterDataRequest", {"faceFound": False, "mode": "set", "parameterValues": values})]

    def translate(self, event: Event) -> list[str]:
        loop = asyncio.get_running_loop()
        if isinstance(event, ExpressionEvent):
            return self._expression(event.emotion)
        if isinstance(event, MotionEvent) and event.name in self.mapping.motions:
            return [self.request("HotkeyTriggerRequest", {"hotkeyID": self.mapping.motions[event.name]})]
        if isinstance(event, StateEvent) and event.state in self.mapping.states:
            return [self.request("HotkeyTriggerRequest", {"hotkeyID": self.mapping.states[event.state]})]
        if isinstance(event, ParamEvent) and self._set(event.name, event.value):
            return self._inject()
        if isinstance(event, GazeEvent):
            self._set("gaze_x", event.x)
            self._set("gaze_y", event.y)
            return self._inject()
        if isinstance(event, SpeechEvent) and event.mouth:
            self._speech = (loop.time() - event.start_ms / 1000.0, event.frame_ms, list(event.mouth))
        if isinstance(event, InterruptEvent):
            self._speech = None
            if self._set("mouth_open", 0.0):
                return self._inject()
        return []

    def _expression(self, emotion: str) -> list[str]:
        out = []
        if self.active_expression:
            out.append(self.request("ExpressionActivationRequest", {"expressionFile": self.active_expression, "active": False}))
            self.active_expression = None
        target = self.mapping.emotions.get(emotion)
        if target and target.hotkey:
            out.append(self.request("HotkeyTriggerRequest", {"hotkeyID": target.hotkey}))
        elif target and target.expression:
            out.append(self.request("ExpressionActivationRequest", {"expressionFile": target.expression, "active": True}))
            self.active_expression = target.expression
        return out

    async def tick(self, ws: ClientConnection) -> None:
        """Play the mouth timeline at 50 Hz; otherwise resend held values every `hold_s`."""
        loop = asyncio.get_running_loop()
        last = 0.0
        while True:
            await asyncio.sleep(0.02)
            now = loop.time()
            if self._speech is not None:
                start, frame_ms, mouth = self._speech
                i = int((now - start) * 1000 / frame_ms)
                if i >= len(mouth):
                    self._speech = None
                    self._set("mouth_open", 0.0)
                else:
                    self._set("mouth_open", mouth[i])
            elif now - last < self.hold_s:
                continue
            for message in self._inject():
                await ws.send(message)
                self.sent += 1
            last = now
