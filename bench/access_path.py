"""What the access path adds to a call: the principal, the delegation and the audit steps.

    .venv/bin/python bench/access_path.py [--calls 150] [--json OUT]

Persona and memory run in this process as `alphaavatar up` builds them (real voice model, FSDD
speakers enrolled, a few hundred memories), each reached by an MCP client in memory as the
local owner. Each round makes one call per variant, interleaved, so the machine's noise falls on
every variant alike:

- bare: none of our middleware (the SDK's dispatch and the tool alone)
- shipped: request ids, error wording, the access check and the audit trail, as served
- no audit: shipped without the audit middleware
- delegated: shipped, the call acting for the speaker (`_meta` alphaavatar/act_as)

The rows: speaker_identify (~3 s of speech) and memory_search; p50 / p95 per variant and the
difference of each to bare.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mcp.client.client import Client  # noqa: E402

from agent.audio import wav_base64  # noqa: E402
from bench.agent_turn import wav16k  # noqa: E402
from bench.memory_latency import pct  # noqa: E402
from clients.registry import create  # noqa: E402
from mcp_servers.core import auth  # noqa: E402
from mcp_servers.core.audit import AuditMiddleware  # noqa: E402
from mcp_servers.core.settings import Settings  # noqa: E402
from mcp_servers.core.transports import ServerSpec, running  # noqa: E402
from tests.datasets import fsdd  # noqa: E402
from tests.support import DATASETS  # noqa: E402

VARIANTS = ("bare", "shipped", "no audit", "delegated")
SPEAKERS = ("george", "jackson", "lucas")


def chain(spec: ServerSpec, variant: str, shipped: list[Any]) -> None:
    """Set the server's middleware for the next call (the SDK composes the chain per request)."""
    ours = [] if variant == "bare" else [m for m in shipped if not (variant == "no audit" and isinstance(m, AuditMiddleware))]
    spec.mcp.middleware[:] = [m for m in spec.mcp.middleware if m not in shipped] + ours


async def timed(client: Client, tool: str, args: dict[str, Any], meta: dict[str, Any] | None) -> float:
    started = time.perf_counter()
    result = await client.call_tool(tool, args, meta=meta)  # type: ignore[arg-type]
    assert not result.is_error, result.content
    return (time.perf_counter() - started) * 1000


async def run(args: argparse.Namespace) -> dict[str, dict[str, list[float]]]:
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home))
        persona, memory = create("persona", settings), create("memory", settings)
        shipped = {spec.name: list(spec.mcp.middleware) for spec in (persona, memory)}
        times: dict[str, dict[str, list[float]]] = {row: {v: [] for v in VARIANTS}
                                                     for row in ("speaker_identify", "memory_search")}
        with auth.local_owner():
            async with running([persona, memory]), Client(persona.mcp) as p, Client(memory.mcp) as m:
                utts = fsdd(6, DATASETS / "fsdd-dev")
                ids, probes = {}, {}
                for name in SPEAKERS:
                    ids[name] = (await p.call_tool("user_create", {"name": name.title()})).structured_content["user_id"]
                    clips = [wav_base64(wav16k(u)) for u in utts[name][:3]]
                    await p.call_tool("speaker_enroll", {"user_id": ids[name], "audio": clips})
                    probes[name] = [wav_base64(wav16k(u)) for u in utts[name][3:]]
                    items = [{"content": f"{name} note {i}: likes sailing, jazz and the number {i}", "user_id": ids[name],
                              "infer": False} for i in range(200)]
                    await m.call_tool("memory_add_batch", {"items": items})
                for i in range(args.calls):
                    name = SPEAKERS[i % len(SPEAKERS)]
                    clip = probes[name][i % len(probes[name])]
                    for variant in VARIANTS:
                        meta = {auth.ACT_AS: ids[name]} if variant == "delegated" else None
                        chain(persona, variant, shipped["persona"])
                        times["speaker_identify"][variant].append(await timed(p, "speaker_identify", {"audio": clip}, meta))
                        chain(memory, variant, shipped["memory"])
                        search = {"query": "what music does she like", "user_id": ids[name]}
                        times["memory_search"][variant].append(await timed(m, "memory_search", search, meta))
        return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=150)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    times = asyncio.run(run(args))
    table = Table(title=f"access path, {args.calls} calls per variant, interleaved (ms)")
    for col in ("call", "variant", "p50", "p95", "p50 - bare", "p95 - bare"):
        table.add_column(col, justify="right" if col[0] == "p" else "left")
    out: dict[str, Any] = {}
    for row, by_variant in times.items():
        base50, base95 = pct(by_variant["bare"], 0.5), pct(by_variant["bare"], 0.95)
        for variant, values in by_variant.items():
            p50, p95 = pct(values, 0.5), pct(values, 0.95)
            out.setdefault(row, {})[variant] = {"p50": p50, "p95": p95}
            table.add_row(row, variant, f"{p50:.1f}", f"{p95:.1f}", f"{p50 - base50:+.2f}", f"{p95 - base95:+.2f}")
    Console().print(table)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
