"""The character MCP server through real MCP clients, with test renderers on the hub's WebSocket."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.fakes.waiting import eventually
from tests.speech import wav_bytes
from tests.support import call, http_server, http_session, server_env, stdio_session


class Renderer:
    """A test renderer: a real WebSocket client of the hub that records every event."""

    def __init__(self, url: str, origin: str | None = None):
        self.url = url
        self.origin = origin
        self.events: list[dict[str, Any]] = []
        self.messages = 0
        self.closed: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def __aenter__(self) -> Renderer:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self._ready.wait(), 10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        try:
            async with websockets.connect(self.url, origin=self.origin) as ws:  # type: ignore[arg-type]
                self._ready.set()
                async for msg in ws:
                    self.messages += 1
                    self.events += [json.loads(line) for line in str(msg).splitlines()]
                self.closed = ws.close_code
        except websockets.exceptions.InvalidStatus as exc:
            self.closed = exc.response.status_code
            self._ready.set()

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["kind"] == kind]

    async def next_of(self, kind: str, after: int = 0) -> dict[str, Any]:
        await eventually(lambda: len(self.of(kind)) > after, within=10, what=f"a {kind} event")
        return self.of(kind)[after]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("character")
    with http_server(["serve", "character", "--transport", "http"], server_env(home)) as base:
        yield base


def ws_url(base: str) -> str:
    return base.replace("http://", "ws://") + "/ws"


async def test_every_tool_reaches_the_renderer(server: str) -> None:
    async with http_session(f"{server}/mcp") as session:
        async with Renderer(ws_url(server)) as r:
            res = await call(session, "character_express", {"emotion": "happy", "intensity": 0.7, "duration_ms": 1500})
            assert not res.is_error and res.data["renderers"] >= 1
            e = await r.next_of("expression")
            assert (e["emotion"], e["intensity"], e["duration_ms"], e["v"]) == ("happy", 0.7, 1500, 1)
            await call(session, "character_motion", {"name": "nod"})
            assert (await r.next_of("motion"))["name"] == "nod"
            await call(session, "character_gaze", {"x": -0.5, "y": 0.25})
            g = await r.next_of("gaze")
            assert (g["x"], g["y"]) == (-0.5, 0.25)
            await call(session, "character_state", {"state": "listening"})
            assert (await r.next_of("state"))["state"] == "listening"
            await call(session, "character_set_param", {"name": "eye_open", "value": 0.3})
            p = await r.next_of("param")
            assert (p["name"], p["value"]) == ("eye_open", 0.3)
            seqs = [e["seq"] for e in r.events]
            assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)

            res = await call(session, "character_speak", {"text": "[happy] Hello there! [surprised] What a day, really."})
            assert not res.is_error
            out = res.data
            assert out["text"] == "Hello there! What a day, really." and out["source"] == "text"
            assert [x["emotion"] for x in out["expressions"]] == ["happy", "surprised"]
            speech = await r.next_of("speech")
            assert speech["utterance_id"] == out["utterance_id"] and len(speech["mouth"]) == out["frames"]
            assert len(speech["visemes"]) == out["visemes"] > 5
            assert (await r.next_of("state", 1))["state"] == "speaking"
            # the second tag's expression arrives later, at its place in the speech
            await eventually(lambda: any(e.get("emotion") == "surprised" for e in r.of("expression")), within=10)
            surprised = next(e for e in r.of("expression") if e["emotion"] == "surprised")
            assert surprised["ts"] - speech["ts"] >= out["expressions"][1]["t_ms"] - 50

            res = await call(session, "character_interrupt", {})
            assert res.data["interrupted"] == out["utterance_id"]
            assert (await r.next_of("interrupt"))["utterance_id"] == out["utterance_id"]
            await eventually(lambda: r.of("state")[-1]["state"] == "idle")

            status = (await call(session, "character_status", {})).data
            assert status["renderers"] >= 1 and status["published"] >= 10
            assert status["state"]["params"]["eye_open"] == 0.3
            assert any(s["kind"] == "websocket" and s["sent"] >= 10 for s in status["subscribers"])
            assert status["last_events"][-1]["kind"] in ("state", "interrupt")

            state = await session.read_resource("character://state")
            data = json.loads(state.contents[0].text)
            assert data["gaze"]["x"] == -0.5 and data["state"]["state"] == "idle"


async def test_speak_with_real_audio(server: str, tmp_path: Path) -> None:
    async with http_session(f"{server}/mcp") as session:
        wav = tmp_path / "hi.wav"
        wav.write_bytes(wav_bytes("Good morning, how are you?"))
        async with Renderer(ws_url(server)) as r:
            res = await call(session, "character_speak", {"text": "Good morning, [curious] how are you?",
                                                          "audio": base64.b64encode(wav.read_bytes()).decode()})
            assert not res.is_error and res.data["source"] == "audio"
            speech = await r.next_of("speech")
            assert max(speech["mouth"]) == 1.0 and speech["mouth"][-1] < 0.1  # closed in the trailing silence
            assert speech["duration_ms"] == 20 * len(speech["mouth"])
            await call(session, "character_interrupt", {})


async def test_late_joiner_gets_the_snapshot_first(server: str) -> None:
    async with http_session(f"{server}/mcp") as session:
        await call(session, "character_express", {"emotion": "curious"})
        await call(session, "character_state", {"state": "thinking"})
        await call(session, "character_set_param", {"name": "head_x", "value": -0.2})
        async with Renderer(ws_url(server)) as r:
            await eventually(lambda: r.messages >= 1)
            first = r.events
            kinds = {e["kind"] for e in first}
            assert {"expression", "state", "param"} <= kinds
            assert next(e for e in first if e["kind"] == "expression")["emotion"] == "curious"
            assert next(e for e in first if e["kind"] == "state")["state"] == "thinking"
            seqs = [e["seq"] for e in first]
            assert seqs == sorted(seqs)


async def test_bad_input_is_refused_and_nothing_disconnects(server: str) -> None:
    async with http_session(f"{server}/mcp") as session:
        async with Renderer(ws_url(server)) as r:
            await eventually(lambda: r.messages >= 1)  # the snapshot
            before = len(r.events)
            bad = [
                ("character_express", {"emotion": "flabbergasted-xyz"}, "Unknown emotion"),
                ("character_express", {"emotion": "hapy"}, "Did you mean 'happy'"),
                ("character_express", {"emotion": "happy", "intensity": 1.5}, "less than or equal to 1"),
                ("character_express", {"emotion": "happy", "duration_ms": -5}, "greater than or equal to 0"),
                ("character_motion", {"name": "moonwalk"}, "Unknown motion"),
                ("character_gaze", {"x": 2, "y": 0}, "less than or equal to 1"),
                ("character_state", {"state": "sleeping"}, "Unknown state"),
                ("character_set_param", {"name": "tail_wag", "value": 0.1}, "Unknown parameter"),
                ("character_set_param", {"name": "mouth_open", "value": 3}, "between 0.0 and 1.0"),
                ("character_set_param", {"name": "mouth_open", "value": "nan"}, ""),
                ("character_speak", {"text": "x" * 6000}, "limit is 5,000"),
                ("character_speak", {"text": "   "}, "empty"),
                ("character_speak", {"text": "hi", "audio": "not base64!!"}, "not valid base64"),
                ("character_speak", {"text": "hi", "audio": base64.b64encode(b"RIFF....WAVEjunk").decode()}, "Unusable audio"),
            ]
            for tool, args, message in bad:
                res = await call(session, tool, args)
                assert res.is_error, (tool, args)
                assert message in res.text, (tool, res.text)
            assert len(r.events) == before  # nothing half-sent
            await call(session, "character_express", {"emotion": "neutral"})
            e = await r.next_of("expression", after=len(r.of("expression")) - 1 if r.of("expression") else 0)
            assert r.closed is None and e["kind"] == "expression"
            assert (await call(session, "character_status", {})).data["renderers"] >= 1


async def test_foreign_browser_origins_are_refused(server: str) -> None:
    async with Renderer(ws_url(server), origin="http://evil.example") as r:
        await eventually(lambda: r.closed is not None)
        assert r.closed in (403, 4403)
    async with Renderer(ws_url(server), origin="http://127.0.0.1:5173") as ok:
        await eventually(lambda: ok.messages >= 0)
        assert ok.closed is None


def test_viewer_is_self_contained(server: str) -> None:
    page = httpx.get(f"{server}/")
    assert page.status_code == 200 and "<svg" in page.text
    assert "http://" not in page.text and "https://" not in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    for asset in ("viewer.js", "viewer.css"):
        res = httpx.get(f"{server}/{asset}")
        assert res.status_code == 200 and "https://" not in res.text


async def test_stdio_transport(tmp_path: Path) -> None:
    async with stdio_session("character", server_env(tmp_path)) as s:
        names = {t.name for t in (await s.list_tools()).tools}
        assert names == {"character_express", "character_motion", "character_gaze", "character_state",
                         "character_speak", "character_interrupt", "character_set_param", "character_status"}
        res = await call(s, "character_express", {"emotion": "sad"})
        assert not res.is_error and res.data["event"]["emotion"] == "sad"
        data = json.loads((await s.read_resource("character://state")).contents[0].text)
        assert data["expression"]["emotion"] == "sad"


def test_schema_command() -> None:
    from tests.support import ALPHAAVATAR

    out = subprocess.run([ALPHAAVATAR, "character", "schema"], capture_output=True, text=True, check=True)
    schema = json.loads(out.stdout)
    assert "ExpressionEvent" in schema["$defs"] and schema["discriminator"]["propertyName"] == "kind"
