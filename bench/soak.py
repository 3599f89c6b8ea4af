"""Soak and load: N concurrent HTTP clients against `alphaavatar up`, a mixed workload.

    python bench/soak.py [--clients 50] [--minutes 10] [--rate 50] [--sweep 10,50,100,max]
                         [--sweep-s 30] [--warmup-s 30] [--mix mixed|add|read] [--no-restart] [--json OUT] [--out bench/out]

Starts `alphaavatar up` on a free loopback port with a temporary ALPHAAVATAR_HOME and one
user-scoped token per simulated user (10 users; clients share them), seeds a little data,
then: a warm-up, the soak (`--clients` clients offering `--rate` requests/s in all for
`--minutes`), and a sweep of offered loads (`max` = every client sends its next request as
soon as the last one is answered: the saturation throughput). Prints requests, errors,
p50/p95 per tool, throughput, the server's RSS and open files (before and after the warm-up
and at the end, with no client connected) and the load average, and saves a
latency-versus-offered-load plot as PNG. Memory: the heap's growth (RSS not backed by a file)
per write acknowledged, its rate in each quarter of the soak (and a PNG of heap against writes),
and the heap of a fresh server restarted on the same data after the same warm-up, so that
memory held for the data and memory the run kept apart show.

Clients speak raw JSON-RPC over httpx (initialize once per session, then `tools/call`), not
the `mcp` client library: 50 clients x 4 sessions of the library's streams in one Python
process cost more CPU than the server calls they time, on the same 2 cores. Offered load is
open-loop: each client sends on its own schedule, and a latency counts from the scheduled send
time, so queueing inside the server (or a client that fell behind) shows up as latency.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.figures import png  # noqa: E402
from bench.memory_latency import pct  # noqa: E402
from tests.support import free_port, heap_mb, server_env  # noqa: E402

EXE = str(Path(sys.executable).with_name("alphaavatar"))
USERS = 10
PROTO = "2025-06-18"
WORDS = ("garden bees roof music travel coffee dog cat piano mountain river book film tennis bread winter summer "
         "sister brother office train weekend birthday doctor recipe lake bicycle violin market").split()
CITIES = ["Paris", "Lyon", "Berlin", "Oslo", "Lisbon", "Kyoto", "Austin", "Lima"]
EMOTIONS = ["happy", "sad", "think", "surprised", "curious", "neutral"]
MIXES = {  # tool -> weight
    "mixed": {"memory_add": 20, "memory_search": 25, "profile_get": 10, "profile_update": 5, "character_express": 10,
              "character_speak": 5, "corpus_search": 20, "corpus_add": 5},
    "add": {"memory_add": 1},
    # nothing stored grows: RSS after warm-up should stay flat (with writes it grows with the data: Edge keeps
    # its write segment's payload and sparse indexes in memory, and maps its files)
    "read": {"memory_search": 35, "profile_get": 15, "character_express": 15, "corpus_search": 35},
}
WRITES = {"memory_add", "profile_update", "corpus_add"}  # the tools whose calls store something
SERVER_OF = {"memory_add": "memory", "memory_search": "memory", "profile_get": "persona", "profile_update": "persona",
             "character_express": "character", "character_speak": "character", "corpus_search": "research",
             "corpus_add": "research"}
console = Console()


class Session:
    """One MCP session over streamable HTTP, spoken as raw JSON-RPC."""

    def __init__(self, http: httpx.AsyncClient, url: str, token: str):
        self.http, self.url, self.n = http, url, 0
        self.headers = {"accept": "application/json, text/event-stream", "content-type": "application/json",
                        "authorization": f"Bearer {token}"}

    async def _post(self, msg: dict[str, Any]) -> dict[str, Any] | None:
        r = await self.http.post(self.url, content=json.dumps(msg), headers=self.headers)
        r.raise_for_status()
        if "id" not in msg:
            return None
        text = r.text
        if "text/event-stream" in r.headers.get("content-type", ""):
            text = next(line[5:] for line in text.split("\n") if line.startswith("data:") and f'"id":{msg["id"]}' in line)
        out: dict[str, Any] = json.loads(text)
        return out

    async def call(self, tool: str, args: dict[str, Any]) -> tuple[bool, Any]:
        """(ok, structured result or error text)."""
        self.n += 1
        reply = await self._post({"jsonrpc": "2.0", "id": self.n, "method": "tools/call",
                                  "params": {"name": tool, "arguments": args}})
        assert reply is not None
        if "error" in reply:
            return False, reply["error"].get("message")
        result = reply["result"]
        if result.get("isError"):
            return False, " ".join(c.get("text", "") for c in result.get("content", []))
        return True, result.get("structuredContent")

    async def close(self) -> None:
        with contextlib.suppress(httpx.HTTPError):
            await self.http.delete(self.url, headers=self.headers)


async def open_session(http: httpx.AsyncClient, url: str, token: str) -> Session:
    s = Session(http, url, token)
    r = await http.post(url, headers=s.headers, content=json.dumps({
        "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": PROTO, "capabilities": {}, "clientInfo": {"name": "alphaavatar-soak", "version": "1"}}}))
    r.raise_for_status()
    s.headers |= {"mcp-session-id": r.headers["mcp-session-id"], "mcp-protocol-version": PROTO}
    await s._post({"jsonrpc": "2.0", "method": "notifications/initialized"})
    return s


@dataclass
class World:
    base: str
    owner: str
    tokens: dict[str, str]  # user -> token
    persona_ids: dict[str, str] = field(default_factory=dict)  # user -> persona user id
    token_for: dict[str, str] = field(default_factory=dict)  # server -> "user" | "owner"
    notes: list[str] = field(default_factory=list)

    def token(self, server: str, user: str) -> str:
        return self.tokens[user] if self.token_for.get(server, "user") == "user" else self.owner


def args_for(tool: str, user: str, world: World, rng: random.Random, i: int) -> dict[str, Any]:
    words = " ".join(rng.choices(WORDS, k=rng.randint(6, 14)))
    if tool == "memory_add":
        return {"content": f"{words} ({uuid.uuid4().hex[:6]})", "user_id": user}
    if tool == "memory_search":
        return {"query": " ".join(rng.choices(WORDS, k=3)), "user_id": user, "limit": 5}
    if tool == "profile_get":
        return {"user_id": world.persona_ids[user]}
    if tool == "profile_update":  # what a conversation tells: where they are, what they like
        patch = ({"op": "set", "field": "identity.location", "value": rng.choice(CITIES)} if rng.random() < 0.5
                 else {"op": "add", "field": "preferences", "value": rng.choice(WORDS)})
        return {"user_id": world.persona_ids[user], "patches": [patch]}
    if tool == "character_express":
        return {"emotion": rng.choice(EMOTIONS), "intensity": round(rng.random(), 2)}
    if tool == "character_speak":
        return {"text": f"[happy] {words}."}
    if tool == "corpus_search":
        return {"query": " ".join(rng.choices(WORDS, k=3)), "limit": 5, "user_id": user}
    return {"text": " ".join(rng.choices(WORDS, k=120)) + f" {uuid.uuid4().hex}", "title": f"note {i}", "user_id": user}


async def setup(world: World, http: httpx.AsyncClient) -> None:
    """Seed each user's data; find out, per server, whether a user-scoped token may use it."""
    for user in world.tokens:
        s = await open_session(http, f"{world.base}/persona/mcp", world.tokens[user])
        ok, got = await s.call("user_create", {"name": user})
        if not ok:
            s = await open_session(http, f"{world.base}/persona/mcp", world.owner)
            ok, got = await s.call("user_create", {"name": user})
            world.token_for["persona"] = "owner"
        assert ok, got
        world.persona_ids[user] = got["user_id"]
        await s.call("profile_update", {"user_id": got["user_id"], "patches": [
            {"op": "add", "field": "preferences", "value": "tea"}]})
    rng = random.Random(0)
    for server, tool in (("memory", "memory_add"), ("research", "corpus_add"), ("character", "character_express")):
        s = await open_session(http, f"{world.base}/{server}/mcp", world.tokens["user-0"])
        ok, got = await s.call(tool, args_for(tool, "user-0", world, rng, 0))
        if not ok:
            world.token_for[server] = "owner"
    for server, how in world.token_for.items():
        if how == "owner":
            world.notes.append(f"{server}: a user-scoped token was refused here, so its calls use the owner token")
    for user in world.tokens:
        m = await open_session(http, f"{world.base}/memory/mcp", world.token("memory", user))
        r = await open_session(http, f"{world.base}/research/mcp", world.token("research", user))
        for i in range(10):
            await m.call("memory_add", args_for("memory_add", user, world, rng, i))
        await r.call("corpus_add", args_for("corpus_add", user, world, rng, 0))


@dataclass
class Run:
    offered: float | None  # requests/s in all; None = closed loop (saturation)
    seconds: float
    lat: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    error_samples: list[str] = field(default_factory=list)
    wall: float = 0.0

    @property
    def requests(self) -> int:
        return sum(len(v) for v in self.lat.values())

    @property
    def throughput(self) -> float:
        return self.requests / self.wall if self.wall else 0.0

    def all(self) -> list[float]:
        return [x for v in self.lat.values() for x in v]

    @property
    def writes(self) -> int:
        """Calls so far that stored something (acknowledged or not: a refused write stores nothing)."""
        return sum(len(v) for tool, v in self.lat.items() if tool in WRITES)


async def drive(world: World, clients: int, run: Run, mix: dict[str, int], seed: int) -> None:
    limits = httpx.Limits(max_connections=clients * 4, max_keepalive_connections=clients * 4)
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        async def client(cid: int, stop: float) -> None:
            rng = random.Random(seed * 1000 + cid)
            user = f"user-{cid % USERS}"
            sessions = {srv: await open_session(http, f"{world.base}/{srv}/mcp", world.token(srv, user))
                        for srv in set(SERVER_OF[t] for t in mix)}
            period = clients / run.offered if run.offered else 0.0
            due = time.perf_counter() + rng.random() * period
            tools, weights = list(mix), list(mix.values())
            i = 0
            while True:
                if period:
                    await asyncio.sleep(max(0.0, due - time.perf_counter()))
                start = due if period else time.perf_counter()
                if start >= stop:
                    break
                tool = rng.choices(tools, weights)[0]
                try:
                    ok, got = await sessions[SERVER_OF[tool]].call(tool, args_for(tool, user, world, rng, i))
                except Exception as exc:  # a transport failure is an error to count
                    ok, got = False, f"{type(exc).__name__}: {exc}"
                run.lat.setdefault(tool, []).append((time.perf_counter() - start) * 1000)
                if not ok:
                    run.errors[tool] = run.errors.get(tool, 0) + 1
                    if len(run.error_samples) < 5:
                        run.error_samples.append(f"{tool}: {str(got)[:200]}")
                due += period
                i += 1
            for s in sessions.values():
                await s.close()

        t0 = time.perf_counter()
        await asyncio.gather(*(client(c, t0 + run.seconds) for c in range(clients)))
        run.wall = time.perf_counter() - t0


@contextlib.asynccontextmanager
async def serving(env: dict[str, str], port: int, log: Any) -> AsyncIterator[psutil.Process]:
    """`alphaavatar up` on this port, once healthy; stopped (SIGTERM, then SIGKILL) on leaving."""
    proc = subprocess.Popen([EXE, "up", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=log)
    try:
        t0 = time.perf_counter()
        async with httpx.AsyncClient(timeout=1) as http:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                        break
                if proc.poll() is not None or time.perf_counter() - t0 > 300:
                    raise SystemExit("alphaavatar up did not become healthy")
                await asyncio.sleep(0.3)
        yield psutil.Process(proc.pid)
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(30)
        if proc.poll() is None:
            proc.kill()


@dataclass
class Usage:
    rss: float  # MB
    anon: float  # MB of RSS not backed by a file: the heap, where a leak would show
    fds: int  # open files and sockets


def usage(proc: psutil.Process) -> Usage:
    return Usage(proc.memory_info().rss / 2**20, heap_mb(proc), proc.num_fds())


def data_mb(home: Path) -> float:
    """What the servers have stored under their data root, in MB."""
    return sum(f.stat().st_blocks * 512 for f in home.rglob("*") if f.is_file()) / 2**20  # allocated, not sparse


def cpu(proc: psutil.Process) -> tuple[float, float]:
    """CPU seconds the server has used: (all threads, its main thread, which runs the event loop).

    Per request, this is how much work a call costs the server, whatever else the machine is doing
    (latency on a shared 2-core machine also counts the time the server waited for a core)."""
    times = proc.cpu_times()
    main = next((t for t in proc.threads() if t.id == proc.pid), None)
    return times.user + times.system, (main.user_time + main.system_time) if main else 0.0


def stolen(before: Any, after: Any) -> float:
    """Percent of the machine's CPU time the hypervisor gave to other guests (0 where not reported):
    on a shared virtual machine, the latencies of two runs compare only at like steal."""
    total = sum(after) - sum(before)
    return 100 * (getattr(after, "steal", 0.0) - getattr(before, "steal", 0.0)) / total if total else 0.0


def table(title: str, runs: list[Run], per_tool: bool) -> Table:
    t = Table(title=title)
    for col in ("offered req/s", "tool", "requests", "errors", "p50 ms", "p95 ms", "req/s done"):
        t.add_column(col, justify="right" if col != "tool" else "left")
    for run in runs:
        offered = f"{run.offered:.0f}" if run.offered else "max"
        rows = sorted(run.lat.items()) if per_tool else []
        for tool, v in rows:
            t.add_row(offered, tool, f"{len(v)}", f"{run.errors.get(tool, 0)}", f"{pct(v, .5):.0f}", f"{pct(v, .95):.0f}",
                      f"{len(v) / run.wall:.1f}")
        everything = run.all()
        t.add_row(offered, "[b]all[/b]", f"{run.requests}", f"{sum(run.errors.values())}", f"{pct(everything, .5):.0f}",
                  f"{pct(everything, .95):.0f}", f"{run.throughput:.1f}")
    return t


def plot(path: Path, sweep: list[Run], clients: int) -> None:
    with png(path) as ax:
        xs = [r.throughput for r in sweep]
        ax.plot(xs, [pct(r.all(), .95) for r in sweep], "o-", label="all calls p95")
        ax.plot(xs, [pct(r.all(), .5) for r in sweep], "o--", label="all calls p50")
        if all("memory_add" in r.lat for r in sweep):
            ax.plot(xs, [pct(r.lat["memory_add"], .95) for r in sweep], "s-", label="memory_add p95")
        for r, x in zip(sweep, xs, strict=True):
            ax.annotate(f"{r.offered:.0f}/s" if r.offered else "max", (x, pct(r.all(), .95)), textcoords="offset points",
                        xytext=(4, 6), fontsize=8)
        ax.axhline(100, color="grey", lw=0.8, ls=":", label="100 ms")
        ax.set_xlabel("requests/s answered (labels: offered)")
        ax.set_ylabel("latency (ms)")
        ax.set_yscale("log")
        ax.set_title(f"alphaavatar up, {clients} HTTP clients, mixed tools ({os.cpu_count()} cores)")
        ax.legend(fontsize=8)


def heap_table(trace: list[tuple[int, float]]) -> Table:
    """The heap's growth per write in each quarter of the soak: slack that levels off shows as a falling
    rate; memory that grows with the data (or a leak) keeps one rate throughout, and the restart tells
    those two apart."""
    t = Table(title="Heap through the soak (sampled under load every 5 s)")
    for col in ("quarter", "writes", "heap at its end MB", "growth MB", "kB per write"):
        t.add_column(col, justify="right")
    q = len(trace) // 4
    marks = [trace[0], trace[q], trace[2 * q], trace[3 * q], trace[-1]]
    for i, ((w0, h0), (w1, h1)) in enumerate(itertools.pairwise(marks), start=1):
        t.add_row(f"{i}", f"{w1 - w0}", f"{h1:.0f}", f"{h1 - h0:+.1f}",
                  f"{1024 * (h1 - h0) / (w1 - w0):.1f}" if w1 > w0 else "-")
    return t


def plot_heap(path: Path, trace: list[tuple[int, float]], warm: float, restarted: float | None) -> None:
    with png(path) as ax:
        ax.plot([w for w, _ in trace], [h for _, h in trace], "-", lw=1, label="heap under load")
        ax.axhline(warm, color="grey", lw=0.8, ls=":", label="after warm-up (idle)")
        if restarted is not None:
            ax.plot([trace[-1][0]], [restarted], "o", label="restarted on the same data")
        ax.set_xlabel("writes during the soak")
        ax.set_ylabel("heap: RSS not backed by a file (MB)")
        ax.set_title(f"alphaavatar up, heap under a soak ({os.cpu_count()} cores)")
        ax.legend(fontsize=8)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=50.0, help="requests/s offered in all during the soak")
    ap.add_argument("--warmup-s", type=float, default=30.0)
    ap.add_argument("--sweep", default="10,50,100,max", help="offered loads for the plot ('' for none)")
    ap.add_argument("--sweep-s", type=float, default=30.0)
    ap.add_argument("--mix", choices=sorted(MIXES), default="mixed")
    ap.add_argument("--no-restart", dest="restart", action="store_false",
                    help="skip restarting the server on the same data to compare its memory")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    mix = MIXES[a.mix]
    owner = f"owner-{uuid.uuid4().hex}"
    tokens = {f"user-{i}": f"tok-{i}-{uuid.uuid4().hex}" for i in range(USERS)}
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="alphaavatar-soak-") as home:
        env = server_env(Path(home), ALPHAAVATAR_TOKEN=owner,
                         ALPHAAVATAR_USER_TOKENS=json.dumps({t: u for u, t in tokens.items()}))
        a.out.mkdir(parents=True, exist_ok=True)
        log = (a.out / "soak_server.log").open("w")
        base = f"http://127.0.0.1:{port}"
        async with serving(env, port, log) as server:
            world = World(base, owner, tokens)
            async with httpx.AsyncClient(timeout=120) as http:
                await setup(world, http)
            start_use = usage(server)
            warm = Run(a.rate, a.warmup_s)
            await drive(world, a.clients, warm, mix, seed=1)
            await asyncio.sleep(2)
            warm_use, warm_data = usage(server), data_mb(Path(home))
            soak = Run(a.rate, a.minutes * 60)
            peak = [warm_use.rss]
            trace: list[tuple[int, float]] = []  # (writes sent so far, heap MB), every 5 s under load

            async def sample() -> None:
                while True:
                    await asyncio.sleep(5)
                    now = usage(server)
                    peak.append(now.rss)
                    trace.append((soak.writes, now.anon))

            sampler = asyncio.create_task(sample())
            cpu_before, machine_before = cpu(server), psutil.cpu_times()
            await drive(world, a.clients, soak, mix, seed=2)
            soak_cpu = [after - before for after, before in zip(cpu(server), cpu_before, strict=True)]
            steal = stolen(machine_before, psutil.cpu_times())
            sampler.cancel()
            await asyncio.sleep(2)
            end_use, end_data = usage(server), data_mb(Path(home))
            sweep: list[Run] = []
            for level in [x for x in a.sweep.split(",") if x]:
                run = Run(None if level == "max" else float(level), a.sweep_s)
                await drive(world, a.clients, run, mix, seed=3 + len(sweep))
                sweep.append(run)
            load = os.getloadavg()
        restart_use = None
        if a.restart:  # the same data, a fresh process, the same warm-up: the heap it lacks is not the data's
            async with serving(env, port, log) as server:
                await drive(world, a.clients, Run(a.rate, a.warmup_s), mix, seed=1)
                await asyncio.sleep(2)
                restart_use = usage(server)

    console.print(table(f"Soak: {a.clients} clients, {a.rate:.0f} req/s offered, {a.minutes:g} min, mix {a.mix}",
                        [soak], per_tool=True))
    console.print(f"server RSS / open fds (no client connected): after setup {start_use.rss:.0f} MB / {start_use.fds}, "
                  f"after warm-up {warm_use.rss:.0f} MB / {warm_use.fds}, at the end {end_use.rss:.0f} MB / {end_use.fds} "
                  f"(peak RSS {max(peak):.0f} MB); load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} "
                  f"on {os.cpu_count()} cores")
    writes = soak.writes
    heap = end_use.anon - warm_use.anon
    console.print(f"during the soak: RSS {end_use.rss - warm_use.rss:+.1f} MB, of it {heap:+.1f} MB of heap (not "
                  f"file-backed: {warm_use.anon:.0f} -> {end_use.anon:.0f} MB), "
                  + (f"{1024 * heap / writes:.1f} kB per write acknowledged ({writes}); " if writes else "")
                  + f"on disk {end_data - warm_data:+.1f} MB")
    if restart_use:
        console.print(f"restarted on the same data, after the same warm-up: heap {restart_use.anon:.0f} MB (RSS "
                      f"{restart_use.rss:.0f} MB); {end_use.anon - restart_use.anon:+.1f} MB at the end of the soak was "
                      f"held beyond the data, {restart_use.anon - warm_use.anon:+.1f} MB is the data's (and the "
                      f"second warm-up's writes)")
    if len(trace) >= 8:
        console.print(heap_table(trace))
        png = a.out / f"soak_heap_{a.mix}.png"
        plot_heap(png, trace, warm_use.anon, restart_use.anon if restart_use else None)
        console.print(f"plot: {png}")
    n = max(soak.requests, 1)
    console.print(f"server CPU per request during the soak: {1000 * soak_cpu[0] / n:.1f} ms in all, "
                  f"{1000 * soak_cpu[1] / n:.1f} ms of it on the event-loop thread "
                  f"({100 * soak_cpu[1] / soak.wall:.0f}% of that thread's time); CPU stolen by the hypervisor {steal:.0f}%")
    for s in soak.error_samples:
        console.print(f"error: {s}")
    for note in world.notes:
        console.print(f"note: {note}")
    if sweep:
        console.print(table(f"Offered load sweep ({a.sweep_s:g} s each)", sweep, per_tool=a.mix == "mixed"))
        png = a.out / f"soak_load_{a.mix}.png"
        plot(png, sweep, a.clients)
        console.print(f"plot: {png}")
    if a.json:
        def summary(r: Run) -> dict[str, Any]:
            return {"offered": r.offered, "requests": r.requests, "errors": r.errors, "throughput": r.throughput,
                    "p50": {t: pct(v, .5) for t, v in r.lat.items()}, "p95": {t: pct(v, .95) for t, v in r.lat.items()}}

        a.json.write_text(json.dumps({"soak": summary(soak), "sweep": [summary(r) for r in sweep],
                                      "rss_mb": [start_use.rss, warm_use.rss, end_use.rss],
                                      "anon_mb": [start_use.anon, warm_use.anon, end_use.anon],
                                      "data_mb": [warm_data, end_data],
                                      "heap_trace": trace,
                                      "restart_mb": {"rss": restart_use.rss, "anon": restart_use.anon} if restart_use else None,
                                      "fds": [start_use.fds, warm_use.fds, end_use.fds], "load": load,
                                      "cpu_ms_per_request": {"all": 1000 * soak_cpu[0] / n,
                                                             "event_loop": 1000 * soak_cpu[1] / n},
                                      "steal_percent": steal}, indent=1))


if __name__ == "__main__":
    asyncio.run(main())
