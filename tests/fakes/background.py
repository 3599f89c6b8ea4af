"""Serve a Starlette app on a loopback port in a daemon thread: the base of every local fake."""

from __future__ import annotations

import threading
import time
from typing import Self

import uvicorn
from starlette.applications import Starlette

from tests.support import free_port


class BackgroundServer:
    """`with Sub(...) as fake:` starts the app at `fake.port` and stops it on exit.

    On exit a request still in flight (a fake told to answer after a long `delay`, whose client is
    gone) is cancelled after a second instead of holding the test's teardown for the whole delay."""

    def __init__(self, app: Starlette, port: int | None = None):
        self.port = port or free_port()
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                   timeout_graceful_shutdown=1))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        while not self._server.started:
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(10)
