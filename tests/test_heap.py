"""The process's heap policy below Python: glibc's malloc arenas (`core.heap.limit_arenas`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mcp_servers.core import heap

ARENA_PROBE = """
import ctypes, sys, threading
from mcp_servers.core import heap
if sys.argv[1] == "limit":
    assert heap.limit_arenas()
barrier = threading.Barrier(8)
def work():
    block = bytearray(100_000)  # from this thread's malloc arena (below glibc's mmap threshold)
    barrier.wait()
    del block
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
ctypes.CDLL("libc.so.6").malloc_stats()  # one 'Arena N:' paragraph per arena, on stderr
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="malloc arenas are glibc's")
def test_limit_arenas_keeps_threads_to_two_malloc_arenas() -> None:
    """Eight threads at once get their own arenas by default; after limit_arenas() they share two."""
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}

    def arenas(mode: str) -> int:
        out = subprocess.run([sys.executable, "-c", ARENA_PROBE, mode], env=env, capture_output=True, text=True,
                             check=True, cwd=Path(__file__).resolve().parents[1])
        return out.stderr.count("Arena ")

    assert arenas("default") > heap.ARENAS
    assert arenas("limit") == heap.ARENAS
