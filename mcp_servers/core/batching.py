"""Group commit: writes that arrive together go to the store together.

Each request waits for its own answer, but requests that arrive within `window` seconds of
each other, or while the previous batch is being written, are handed to `write` as one list:
one embedding batch, one store operation and one flush instead of one each. `write` answers
every request (a value or the exception that request alone raises); if it raises, every
request of its batch gets that error and nothing of the batch was acknowledged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    def __init__(self, write: Callable[[list[T]], Awaitable[list[R | BaseException]]], window: float = 0.002,
                 max_batch: int = 256):
        self._write = write
        self.window = window
        self.max_batch = max_batch
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._task: asyncio.Task[None] | None = None
        self.batches = 0  # how many batches were written (for benchmarks and logs)

    async def submit(self, request: T) -> R:
        loop = asyncio.get_running_loop()
        if self._task is not None and self._task.get_loop() is not loop:  # an event loop that is gone
            self._task, self._queue = None, []
        fut: asyncio.Future[R] = loop.create_future()
        self._queue.append((request, fut))
        if self._task is None:
            self._task = asyncio.create_task(self._drain())
        return await fut

    async def _drain(self) -> None:
        try:
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
        finally:
            self._task = None

    async def idle(self) -> None:
        """Wait until every submitted request was written (before closing the store)."""
        while self._task is not None:
            await asyncio.shield(self._task)
