"""Group commit: writes that arrive together go to the store together.

Each request waits for its own answer, but requests that arrive within `window` seconds of
each other, or while the previous batch is being written, are handed to `write` as one list:
one embedding batch, one store operation and one flush instead of one each. `write` answers
every request (a value or the exception that request alone raises); if it raises, every
request of its batch gets that error and nothing of the batch was acknowledged.

`lanes` batches may be written at once (default one: a store writer must be alone). With two,
a request that arrives while one batch is being written starts the next batch at once instead
of waiting for it — the embedding model uses this to keep both cores of a small machine busy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    def __init__(self, write: Callable[[list[T]], Awaitable[list[R | BaseException]]], window: float = 0.002,
                 max_batch: int = 256, lanes: int = 1):
        self._write = write
        self.window = window
        self.max_batch = max_batch
        self.lanes = lanes
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches = 0  # how many batches were written (for benchmarks and logs)

    async def submit(self, request: T) -> R:
        loop = asyncio.get_running_loop()
        if any(t.get_loop() is not loop for t in self._tasks):  # an event loop that is gone
            self._tasks, self._queue = set(), []
        fut: asyncio.Future[R] = loop.create_future()
        self._queue.append((request, fut))
        # a running lane takes this request in its next batch; a finished one is done for good
        self._tasks = {t for t in self._tasks if not t.done()}
        if len(self._tasks) < self.lanes:
            self._tasks.add(asyncio.create_task(self._drain()))
        return await fut

    async def _drain(self) -> None:
        await asyncio.sleep(self.window)
        while self._queue:
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch:]
            self.batches += 1
            try:
                outcomes = await self._write([request for request, _ in batch])
            except Exception as exc:  # the whole batch failed: each caller hears why
                outcomes = [exc] * len(batch)
            for (_, fut), outcome in zip(batch, outcomes, strict=True):
                if fut.done():  # the caller went away; its write may still have happened
                    continue
                if isinstance(outcome, BaseException):
                    fut.set_exception(outcome)
                else:
                    fut.set_result(outcome)

    async def idle(self) -> None:
        """Wait until every submitted request was written (before closing the store)."""
        while pending := [t for t in self._tasks if not t.done()]:
            await asyncio.shield(pending[0])
