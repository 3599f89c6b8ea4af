"""/healthz is honest: a model that failed to load makes its server 'failed', with the reason."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx

from tests.speech import wav_bytes
from tests.support import call, http_server, http_session, server_env


async def test_a_model_that_failed_to_load_is_failed_not_ready(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-voice-model.onnx"
    env = server_env(tmp_path, ALPHAAVATAR_PERSONA_VOICE_MODEL=str(missing))
    with http_server(["serve", "persona", "--transport", "http"], env,
                     until=lambda r: r.json()["status"] != "starting") as base:
        r = httpx.get(f"{base}/healthz")
        assert r.status_code == 503 and r.json()["status"] == "failed"
        persona = r.json()["servers"]["persona"]
        assert persona["voice_model"].startswith("failed: ") and str(missing) in persona["voice_model"]
        assert persona["face_model"] == "ready"  # the other model is unaffected
        async with http_session(f"{base}/mcp") as s:  # the server stays up and says why voice tools fail
            speech = base64.b64encode(wav_bytes("Hello there, this is a test of the voice model.")).decode()
            res = await call(s, "speaker_identify", {"audio": speech})
            assert res.is_error and str(missing) in res.text, res.text
