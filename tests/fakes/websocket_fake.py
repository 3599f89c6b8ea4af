"""A WebSocket server on a loopback port for the renderer fakes (AIRI, VTube Studio)."""

from __future__ import annotations

from typing import Self

from websockets.asyncio.server import Server, ServerConnection, serve


class WebSocketFake:
    """`async with Sub(...) as fake:` serves `fake._handle` at `fake.url` (ending in `path`)."""

    path = ""

    def __init__(self) -> None:
        self._server: Server | None = None
        self.url = ""

    async def __aenter__(self) -> Self:
        self._server = await serve(self._handle, "127.0.0.1", 0)
        port = next(iter(self._server.sockets)).getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}{self.path}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, ws: ServerConnection) -> None:
        raise NotImplementedError
