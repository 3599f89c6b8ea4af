"""The threads models run on: one worker thread per modality, so a photo never delays a voice
identification, and one intra-op thread per model (torch or onnxruntime): one is about as fast as
two on short clips and far steadier when the cores are shared."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class Worker:
    """One thread that runs every call of one modality's model, in order."""

    def __init__(self, name: str, initializer: Callable[[], None] | None = None):
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name, initializer=initializer)

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Start `fn(*args)` on this thread (for work awaited later, such as loading a model)."""
        return self._pool.submit(fn, *args)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` on this thread, awaited."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)


def one_torch_thread() -> None:
    import torch

    torch.set_num_threads(1)


def onnx_session(path: Path) -> Any:
    """An onnxruntime CPU session on one thread (steadier under load, like the torch models)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
