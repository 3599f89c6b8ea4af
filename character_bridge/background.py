"""One long-lived asyncio task per object (the adapters): started once, cancelled on stop."""

from __future__ import annotations

import abc
import asyncio
import contextlib


class Background(abc.ABC):
    task_name = "background"
    _task: asyncio.Task[None] | None = None

    @abc.abstractmethod
    async def run(self) -> None:
        """The task's body; it runs until cancelled."""

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=self.task_name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
