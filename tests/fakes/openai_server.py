"""A local OpenAI-compatible server speaking the real wire protocol, for tests and benches.

Chat completions (streamed as SSE chunks or not, text or tool calls), embeddings, and the
audio endpoints a voice pipeline uses. Replies come from a `responder` the test supplies; every
request body is recorded in `requests`.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.background import BackgroundServer


@dataclass
class Reply:
    """What the fake LLM answers: text, and/or tool calls `[{"name": ..., "arguments": {...}}]`."""

    content: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200  # e.g. 429 to exercise retries
    delay: float = 0.0  # seconds before the first token (a slow model)
    gap: float = 0.0  # seconds between streamed pieces (a model writing at reading pace)


Responder = Callable[[dict[str, Any]], Reply]
Transcriber = Callable[[bytes], str]  # WAV bytes in, transcript out
SPEECH_RATE = 24_000  # what OpenAI's /v1/audio/speech returns (pcm: 24 kHz mono s16le)


class FakeOpenAI(BackgroundServer):
    """Run with `with FakeOpenAI(responder) as fake:`; point clients at `fake.base_url`."""

    def __init__(self, responder: Responder | None = None, port: int | None = None,
                 transcriber: Transcriber | None = None):
        self.responder: Responder = responder or (lambda body: Reply(content="OK"))
        self.transcriber: Transcriber = transcriber or (lambda wav: "hello")
        self.requests: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.transcriptions: list[dict[str, Any]] = []  # {"model", "audio" (WAV bytes), "text"}
        self.speeches: list[dict[str, Any]] = []  # request bodies of /v1/audio/speech, with "_at" (unix time)
        routes = [
            Route("/v1/chat/completions", self._chat, methods=["POST"]),
            Route("/v1/embeddings", self._embeddings, methods=["POST"]),
            Route("/v1/audio/transcriptions", self._transcriptions, methods=["POST"]),
            Route("/v1/audio/speech", self._speech, methods=["POST"]),
            Route("/v1/models", self._models),
        ]
        self.extra_routes = routes
        self.app = Starlette(routes=routes)
        super().__init__(self.app, port)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def _models(self, request: Request) -> JSONResponse:
        return JSONResponse({"object": "list", "data": [{"id": "fake", "object": "model", "owned_by": "tests"}]})

    async def _embeddings(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.requests.append(body)
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = []
        for i, text in enumerate(inputs):
            # A deterministic bag-of-characters vector: similar texts get similar vectors.
            vec = [0.0] * 64
            for ch in str(text).lower():
                vec[ord(ch) % 64] += 1.0
            data.append({"object": "embedding", "index": i, "embedding": vec})
        return JSONResponse({"object": "list", "data": data, "model": body.get("model", "fake"),
                             "usage": {"prompt_tokens": 1, "total_tokens": 1}})

    async def _transcriptions(self, request: Request) -> JSONResponse:
        """Multipart upload as the OpenAI SDK sends it; `json`/`verbose_json`/`text` answers."""
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            return JSONResponse({"error": {"message": "file is required", "type": "invalid_request_error"}}, 400)
        audio = await upload.read()
        text = self.transcriber(audio)
        self.transcriptions.append({"model": form.get("model"), "audio": audio, "text": text})
        if form.get("response_format") == "text":
            return Response(text, media_type="text/plain")
        body: dict[str, Any] = {"text": text}
        if form.get("response_format") == "verbose_json":
            body.update(language="english", duration=0.0, segments=[])
        return JSONResponse(body)

    async def _speech(self, request: Request) -> Response:
        """Real speech (espeak-ng) as `pcm` (24 kHz s16le), `wav` or `flac`; other formats are refused."""
        body = await request.json()
        self.speeches.append({**body, "_at": time.time()})
        fmt = body.get("response_format", "mp3")
        if fmt not in ("pcm", "wav", "flac"):
            return JSONResponse({"error": {"message": f"this fake speaks pcm, wav or flac, not {fmt}",
                                           "type": "invalid_request_error"}}, 400)
        return Response(speak(str(body.get("input", "")), fmt), media_type=f"audio/{fmt}")

    async def _chat(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        reply = self.responder(body)
        if reply.status != 200:
            return JSONResponse({"error": {"message": "scripted error", "type": "rate_limit_error"}},
                                status_code=reply.status)
        cid, now, model = f"chatcmpl-{uuid.uuid4().hex[:12]}", int(time.time()), body.get("model", "fake")
        calls = [
            {"id": f"call_{uuid.uuid4().hex[:8]}", "type": "function",
             "function": {"name": c["name"], "arguments": json.dumps(c.get("arguments", {}))}}
            for c in reply.tool_calls
        ]
        finish = "tool_calls" if calls else "stop"
        usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": reply.content}
            if calls:
                message["tool_calls"] = calls
            return JSONResponse({"id": cid, "object": "chat.completion", "created": now, "model": model,
                                 "choices": [{"index": 0, "finish_reason": finish, "message": message}],
                                 "usage": usage})

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> str:
            return "data: " + json.dumps({"id": cid, "object": "chat.completion.chunk", "created": now,
                                          "model": model, "choices": [{"index": 0, "delta": delta,
                                                                       "finish_reason": finish_reason}]}) + "\n\n"

        async def stream():  # type: ignore[no-untyped-def]
            if reply.delay:
                await asyncio.sleep(reply.delay)
            yield chunk({"role": "assistant", "content": ""})
            if reply.content:
                for i, piece in enumerate(_pieces(reply.content)):
                    if i and reply.gap:
                        await asyncio.sleep(reply.gap)
                    yield chunk({"content": piece})
            for i, c in enumerate(calls):
                yield chunk({"tool_calls": [{"index": i, "id": c["id"], "type": "function",
                                             "function": {"name": c["function"]["name"],
                                                          "arguments": c["function"]["arguments"]}}]})
            yield chunk({}, finish)
            yield "data: " + json.dumps({"id": cid, "object": "chat.completion.chunk", "created": now,
                                         "model": model, "choices": [], "usage": usage}) + "\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream")


def _pieces(text: str, size: int = 12) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)]


def speak(text: str, fmt: str = "pcm", rate: int = SPEECH_RATE) -> bytes:
    """Render text with espeak-ng at `rate` Hz mono: raw s16le (`pcm`) or a `wav`/`flac` file."""
    import io

    import numpy as np
    import soundfile as sf
    import soxr

    from tests.speech import synthesize

    pcm, source_rate = synthesize(text or " ")
    samples = pcm.astype(np.float32) / 32768
    samples = soxr.resample(samples, source_rate, rate) if source_rate != rate else samples
    if fmt == "pcm":
        return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    out = io.BytesIO()
    sf.write(out, samples, rate, format=fmt.upper(), subtype="PCM_16")
    return out.getvalue()
