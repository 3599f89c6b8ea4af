"""Each extra's installed size and cold start, next to the single install every server needed before.

    python bench/install_footprint.py NAME=VENV:SERVER ...   e.g. memory=/tmp/v-memory:memory

For each entry: the virtualenv's size on disk, and the seconds from launching `VENV/bin/alphaavatar
serve SERVER --transport http` to its first 200 from /healthz (every model loaded), twice: cold (an
empty data root and cache folder: the text model's ONNX graph is written first) and warm (the cache
kept). The entries run one after another, so a busy machine slows each alike.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


def size_mb(venv: Path) -> int:
    return int(subprocess.run(["du", "-sm", str(venv)], capture_output=True, text=True, check=True).stdout.split()[0])


def start_s(venv: Path, server: str, home: Path, cache: Path) -> float:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"PATH": "/usr/bin:/bin", "ALPHAAVATAR_HOME": str(home), "XDG_CACHE_HOME": str(cache), "HF_HUB_OFFLINE": "1"}
    began = time.perf_counter()
    proc = subprocess.Popen([str(venv / "bin" / "alphaavatar"), "serve", server, "--transport", "http", "--port",
                             str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - began < 600:
            if proc.poll() is not None:
                raise RuntimeError(f"{venv} {server}: exited {proc.returncode}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    return time.perf_counter() - began
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"{venv} {server}: no /healthz in 600 s")
    finally:
        proc.terminate()
        proc.wait(30)


def main(entries: list[str]) -> None:
    print("| install | server | size (MB) | cold start (s) | warm start (s) |\n|---|---|---:|---:|---:|")
    for entry in entries:
        name, _, rest = entry.partition("=")
        venv, _, server = rest.rpartition(":")
        scratch = Path(tempfile.mkdtemp(prefix="footprint-"))
        try:
            cold = start_s(Path(venv), server, scratch / "home", scratch / "cache")
            warm = start_s(Path(venv), server, scratch / "home", scratch / "cache")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        print(f"| {name} | {server} | {size_mb(Path(venv))} | {cold:.1f} | {warm:.1f} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
