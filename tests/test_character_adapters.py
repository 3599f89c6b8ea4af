"""AIRI and VTube Studio adapters against local fakes speaking their protocols, including drops."""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path

from character_bridge.adapters import AiriAdapter, Backoff, VTubeStudioAdapter
from character_bridge.hub import Hub
from character_bridge.protocol import ExpressionEvent, InterruptEvent, ParamEvent, SpeechEvent, StateEvent
from tests.fakes.airi_server import FakeAiri
from tests.fakes.vtube_studio import FakeVTubeStudio
from tests.fakes.waiting import eventually
from tests.support import server_env, stdio_session

FAST = Backoff(initial=0.05, maximum=0.2)


async def test_airi_handshake_heartbeat_and_events() -> None:
    async with FakeAiri(token="s3cret") as fake:
        hub = Hub()
        adapter = AiriAdapter(hub, fake.url, token="s3cret", backoff=FAST, heartbeat_s=0.1)
        adapter.start()
        try:
            await eventually(lambda: adapter.connected, what="the AIRI adapter to connect")
            assert fake.announced[0]["name"] == "alphaavatar-character"
            assert "alphaavatar:character:expression" in fake.announced[0]["possibleEvents"]
            hub.publish(ExpressionEvent(emotion="happy", intensity=0.6))
            hub.publish(ParamEvent(name="mouth_open", value=0.4))
            await eventually(lambda: fake.of_kind("param"), what="AIRI to get the param")
            (expr,) = fake.of_kind("expression")
            assert expr["emotion"] == "happy" and expr["intensity"] == 0.6
            assert expr["act"] == '<|ACT:{"emotion": {"name": "happy", "intensity": 0.6}}|>'
            assert fake.of_kind("param")[0]["value"] == 0.4
            # every event carries the SDK's metadata: our module identity and an event id
            assert all(e["metadata"]["source"]["plugin"]["id"] == "alphaavatar-character" for e in fake.received)
            await eventually(lambda: fake.pongs >= 1, what="a pong to the fake's ping")
        finally:
            await adapter.stop()


async def test_airi_wrong_token_is_refused_and_retried() -> None:
    async with FakeAiri(token="right") as fake:
        adapter = AiriAdapter(Hub(), fake.url, token="wrong", backoff=FAST)
        adapter.start()
        try:
            await eventually(lambda: fake.refused >= 2, what="two refused attempts")
            assert not adapter.connected
            assert "refused the token" in (adapter.last_error or "")
        finally:
            await adapter.stop()


async def test_airi_reconnects_after_drop_and_resends_state() -> None:
    async with FakeAiri(drop_once_after=3) as fake:
        hub = Hub()
        adapter = AiriAdapter(hub, fake.url, backoff=FAST)
        adapter.start()
        try:
            await eventually(lambda: adapter.connected)
            hub.publish(StateEvent(state="listening"))
            hub.publish(ExpressionEvent(emotion="sad"))
            hub.publish(ParamEvent(name="head_x", value=0.3))  # the third event: the fake drops us
            await eventually(lambda: fake.connections >= 2 and adapter.connected, what="a reconnect")
            # the new connection starts with the snapshot: the state and expression come again
            await eventually(lambda: len(fake.of_kind("expression")) >= 2, what="the snapshot after reconnect")
            hub.publish(ExpressionEvent(emotion="curious"))
            await eventually(lambda: fake.of_kind("expression")[-1]["emotion"] == "curious")
            assert adapter.reconnects >= 1 and adapter.connects >= 2
        finally:
            await adapter.stop()


async def test_airi_unreachable_backs_off() -> None:
    adapter = AiriAdapter(Hub(), "ws://127.0.0.1:9/ws", backoff=FAST)
    adapter.start()
    try:
        await eventually(lambda: adapter.reconnects >= 3, what="three failed attempts")
        assert not adapter.connected and adapter.last_error
    finally:
        await adapter.stop()


async def test_vts_token_is_requested_once_and_kept(tmp_path: Path) -> None:
    token_path = tmp_path / "vts_token"
    async with FakeVTubeStudio() as fake:
        for _ in range(2):
            adapter = VTubeStudioAdapter(Hub(), fake.url, token_path=token_path, backoff=FAST)
            adapter.start()
            await eventually(lambda a=adapter: a.connected, what="VTube Studio authentication")  # type: ignore[misc]
            await adapter.stop()
        assert fake.token_requests == 1  # the second run reused the stored token
        assert token_path.read_text() in fake.tokens
        assert token_path.stat().st_mode & 0o777 == 0o600


async def test_vts_denied_keeps_no_token(tmp_path: Path) -> None:
    async with FakeVTubeStudio(deny=True) as fake:
        adapter = VTubeStudioAdapter(Hub(), fake.url, token_path=tmp_path / "t", backoff=FAST)
        adapter.start()
        try:
            await eventually(lambda: fake.token_requests >= 2)
            assert not adapter.connected and "denied" in (adapter.last_error or "")
            assert not (tmp_path / "t").exists()
        finally:
            await adapter.stop()


@contextlib.asynccontextmanager
async def vts_connected(fake: FakeVTubeStudio, tmp_path: Path) -> AsyncIterator[tuple[Hub, VTubeStudioAdapter]]:
    """A hub and a VTube Studio adapter connected to `fake`, stopped afterwards."""
    hub = Hub()
    adapter = VTubeStudioAdapter(hub, fake.url, token_path=tmp_path / "t", backoff=FAST)
    adapter.start()
    try:
        await eventually(lambda: adapter.connected)
        yield hub, adapter
    finally:
        await adapter.stop()


async def test_vts_params_held_at_1hz_expressions_and_mouth(tmp_path: Path) -> None:
    async with FakeVTubeStudio() as fake, vts_connected(fake, tmp_path) as (hub, _):
        hub.publish(ParamEvent(name="mouth_smile", value=1.0))
        hub.publish(ExpressionEvent(emotion="happy"))
        await eventually(lambda: len(fake.of_type("InjectParameterDataRequest")) >= 6, within=6)
        injects = fake.of_type("InjectParameterDataRequest")
        held = [t for t, d in injects if {"id": "MouthSmile", "value": 1.0} in d["parameterValues"]]
        assert len(held) >= 4
        assert max(b - a for a, b in itertools.pairwise(held)) < 1.0  # resent faster than 1 Hz
        assert injects[0][1]["mode"] == "set"
        (_, activation), = fake.of_type("ExpressionActivationRequest")
        assert activation == {"expressionFile": "happy.exp3.json", "active": True}
        hub.publish(ExpressionEvent(emotion="sad"))  # the previous expression is switched off first
        await eventually(lambda: len(fake.of_type("ExpressionActivationRequest")) == 3)
        assert [d for _, d in fake.of_type("ExpressionActivationRequest")][1:] == [
            {"expressionFile": "happy.exp3.json", "active": False},
            {"expressionFile": "sad.exp3.json", "active": True}]
        # a speech timeline is played into MouthOpen at 50 Hz, then the mouth closes
        n = len(fake.requests)
        hub.publish(SpeechEvent(text="hi", mouth=[0.0, 0.5, 1.0, 1.0, 0.5] * 6, duration_ms=600))
        await eventually(lambda: len(fake.requests) - n >= 15)
        hub.publish(InterruptEvent())
        await eventually(lambda: _mouth(fake.of_type("InjectParameterDataRequest")[-1][1]) == 0.0)
        values = {_mouth(d) for _, d in fake.of_type("InjectParameterDataRequest")[-40:]}
        assert {0.5, 1.0} <= values


def _mouth(data: dict) -> float | None:
    return next((p["value"] for p in data["parameterValues"] if p["id"] == "MouthOpen"), None)


async def test_vts_reconnects_after_drop(tmp_path: Path) -> None:
    async with FakeVTubeStudio(drop_after=3) as fake, vts_connected(fake, tmp_path) as (hub, adapter):
        hub.publish(ParamEvent(name="eye_open", value=0.5))
        await eventually(lambda: fake.connections >= 3, what="two reconnects", within=10)
        assert fake.token_requests == 1  # re-authenticated with the stored token
        assert adapter.reconnects >= 2


async def test_server_drives_vts_through_mcp(tmp_path: Path) -> None:
    """The character server, configured for VTube Studio, forwards a tool call to it."""
    async with FakeVTubeStudio() as fake:
        mapping = tmp_path / "vts.json"
        mapping.write_text(json.dumps({"emotions": {"surprised": {"hotkey": "HK-surprise"}}}))
        env = server_env(tmp_path, ALPHAAVATAR_CHARACTER_VTS_URL=fake.url,
                         ALPHAAVATAR_CHARACTER_VTS_MAPPING=str(mapping))
        async with stdio_session("character", env) as session:
            await eventually(lambda: fake.token_requests == 1, what="the server's adapter to ask for a token")
            res = await session.call_tool("character_express", {"emotion": "surprised"})
            assert not res.is_error
            await eventually(lambda: fake.of_type("HotkeyTriggerRequest"), what="the hotkey")
            assert fake.of_type("HotkeyTriggerRequest")[0][1] == {"hotkeyID": "HK-surprise"}
            status = (await session.call_tool("character_status", {})).structured_content
            assert status is not None
            (vts,) = status["adapters"]
            assert vts["name"] == "vtube_studio" and vts["connected"] and vts["sent"] >= 1
        assert (tmp_path / "character" / "vts_token").exists()
