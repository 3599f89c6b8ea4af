"""Every tool of every server, fuzzed from the inputSchema it publishes (tools/list).

Arguments come from hypothesis-jsonschema (valid by the schema) and from invalid variants of a
valid call (wrong types, null where required, NUL and control characters, megabyte strings,
deep nesting, extra keys, huge lists, boundary numbers, broken media). A new tool is fuzzed
without touching this file. Every answer must be a success or an error a person can act on
(`support.unhelpful`); the server must keep answering; a rejected call must write nothing
(per-user counts before and after); the data set aside before the fuzz must be unchanged.

Writes go to a probe user, destructive tools (forget, delete, reset, merge, cancel) to a
throwaway user or to generated ids, never to the keeper's data. Default run: the
`fuzz-default` hypothesis profile (5 generated sets a tool, every invalid variant); `pytest -m slow`
runs `fuzz-slow` (400 a tool).
Lone surrogates cannot be sent through the SDK client at all; tests/test_transport.py sends
them as raw JSON.
"""

from __future__ import annotations

import base64
import io
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis_jsonschema import from_schema
from mcp import ClientSession
from mcp.shared.exceptions import MCPError
from mcp.types import Tool

from tests.support import call, ok, server_env, stdio_session, unhelpful

pytestmark = pytest.mark.timeout(900)

settings.register_profile("fuzz-default", max_examples=5, derandomize=True, database=None, deadline=None,
                          phases=[Phase.generate], suppress_health_check=list(HealthCheck))
settings.register_profile("fuzz-slow", max_examples=400, database=None, deadline=None,
                          phases=[Phase.generate], suppress_health_check=list(HealthCheck))

DESTRUCTIVE = re.compile(r"forget|delete|reset|merge|cancel")
# No fuzzed call may reach beyond this machine: URL arguments come from this pool.
URLS = ["http://127.0.0.1:9/x", "http://[::1]:9/", "file:///etc/passwd", "ftp://127.0.0.1/", "", "not a url",
        "http://", "javascript:alert(1)", "http://0.0.0.0:9/", "http://localhost:9/" + "a" * 3000]
URL_KEYS = ("url", "urls", "audio_ref")
CALL_TIMEOUT = 60.0


def _wav(rate: int, frames: int) -> str:
    buf = io.BytesIO()
    sf.write(buf, np.zeros(frames, dtype=np.float32), rate, format="WAV")
    return base64.b64encode(buf.getvalue()).decode()


MEDIA = {
    "WAV at 1 Hz": _wav(1, 100),
    "WAV of 0 frames": _wav(16000, 0),
    "RIFF header only": base64.b64encode(b"RIFF\x24\x00\x00\x00WAVEfmt ").decode(),
    "JPEG start only": base64.b64encode(b"\xff\xd8\xff\xe0" + b"\x00" * 20).decode(),
    "PNG header, no data": base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 30).decode(),
    "random bytes": base64.b64encode(np.random.default_rng(0).bytes(3000)).decode(),
    "a data: URI of text": "data:text/plain;base64," + base64.b64encode(b"hello").decode(),
}


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


def json_types(prop: dict[str, Any]) -> set[str]:
    out: set[str] = set()
    for alt in [prop, *prop.get("anyOf", []), *prop.get("oneOf", [])]:
        t = alt.get("type")
        out |= set(t) if isinstance(t, list) else {t} if t else set()
        if "enum" in alt or "const" in alt:
            out.add("string")
        if "$ref" in alt:
            out.add("object")
    return out


def _bounds(prop: dict[str, Any]) -> list[Any]:
    found: list[Any] = []
    for alt in [prop, *prop.get("anyOf", [])]:
        for key, step in (("minimum", -1), ("exclusiveMinimum", 0), ("maximum", 1), ("exclusiveMaximum", 0)):
            if key in alt:
                found.append(alt[key] + step)
    return found


def invalid_variants(schema: dict[str, Any], base: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(label, arguments) that a host following the schema would not send, built from a valid call."""
    props: dict[str, Any] = schema.get("properties", {})
    out: list[tuple[str, dict[str, Any]]] = [
        ("extra keys", {**base, "unexpected_key": 1, "__proto__": {"polluted": True}}),
        ("nesting 250 deep in an extra key", {**base, "zz": nested(250)}),
    ]
    for name in schema.get("required", []):
        out.append((f"{name}: missing", {k: v for k, v in base.items() if k != name}))
        out.append((f"{name}: null", {**base, name: None}))
    for name, prop in props.items():
        types = json_types(prop)
        wrong = next(v for t, v in (("integer", 12345), ("string", "a string"), ("array", [1, 2]),
                                    ("object", {"a": 1}), ("boolean", True)) if t not in types)
        out.append((f"{name}: wrong type", {**base, name: wrong}))
        if "string" in types:
            out += [(f"{name}: 1 MB string", {**base, name: "A" * 1_000_000}),
                    (f"{name}: NUL and control characters", {**base, name: "a\x00b" + "".join(map(chr, range(1, 32)))}),
                    (f"{name}: RTL, noncharacters, combining marks", {**base, name: "a\u202eb\uffff\U0010ffff" + "\u0301" * 500}),
                    (f"{name}: empty", {**base, name: ""})]
        if types & {"integer", "number"}:
            for value in [*_bounds(prop), 2**63, -(2**63), 1e308, -1, 0.5]:
                out.append((f"{name}: {value!r}", {**base, name: value}))
        if "array" in types:
            out += [(f"{name}: 100k elements", {**base, name: [0] * 100_000}),
                    (f"{name}: lists 150 deep", {**base, name: json.loads("[" * 150 + "]" * 150)})]
        if "object" in types:
            out += [(f"{name}: nesting 150 deep", {**base, name: nested(150)}),
                    (f"{name}: nesting 33 deep", {**base, name: nested(33)}),
                    (f"{name}: 50k keys", {**base, name: {f"k{i}": i for i in range(50_000)}})]
        if name in ("audio", "image"):
            out += [(f"{name}: {label}", {**base, name: value}) for label, value in MEDIA.items()]
    return out


def destructive(tool: Tool) -> bool:
    return bool(tool.annotations and tool.annotations.destructive_hint) or bool(DESTRUCTIVE.search(tool.name))


@dataclass
class Target:
    """A server under fuzz: who writes go to, how to count what is stored, what must not change."""

    session: ClientSession
    probe: str  # non-destructive writes go to this user
    throwaway: str  # destructive tools aim here
    count: Callable[[], Awaitable[Any]]
    keeper: Callable[[], Awaitable[Any]]  # data set aside before the fuzz; must stay as it was
    ids: dict[str, str] = field(default_factory=dict)  # argument name -> an existing throwaway id

    def adapt(self, tool: Tool, args: dict[str, Any]) -> dict[str, Any]:
        erases = destructive(tool)
        props = tool.input_schema.get("properties", {})
        out = dict(args)
        if "user_id" in props:
            out["user_id"] = self.throwaway if erases else self.probe
        if isinstance(out.get("items"), list):  # memory_add_batch: every item is someone's
            out["items"] = [{**it, "user_id": self.probe} if isinstance(it, dict) else it for it in out["items"]]
        for name, value in self.ids.items():
            if name in props and not erases:
                out[name] = value
        for key in URL_KEYS:
            if isinstance(out.get(key), list):
                out[key] = [URLS[i % len(URLS)] for i in range(min(len(out[key]), 5))]
            elif isinstance(out.get(key), str):
                out[key] = URLS[len(out[key]) % len(URLS)]
        return out


async def _total(s: ClientSession, tool: str, args: dict[str, Any]) -> int:
    return int((await ok(s, tool, args))["total"])


async def memory_target(s: ClientSession) -> Target:
    keeper, probe, throwaway, scratch = (f"{who}-{uuid.uuid4().hex[:8]}" for who in ("keeper", "probe", "throwaway",
                                                                                    "scratch"))
    for text in ("keeper likes green tea", "keeper's sister lives in Lyon"):
        await ok(s, "memory_add", {"content": text, "user_id": keeper, "metadata": {"k": [1, {"v": "x"}]}})
    await ok(s, "tool_call_record", {"tool": "web_search", "arguments": {"q": "tea"}, "user_id": keeper})
    await ok(s, "memory_add", {"content": "a throwaway memory", "user_id": throwaway})
    added = await ok(s, "memory_add", {"content": "a scratch memory", "user_id": scratch})
    memory_id = added["results"][0]["id"]  # memory_update, _get, _history aim here
    await ok(s, "memory_add", {"content": "Remind me to call the scratch tomorrow at six", "user_id": scratch})
    followup_id = (await ok(s, "followup_list", {"user_id": scratch}))["results"][0]["id"]  # followup_update aims here

    async def count() -> Any:
        changed = await ok(s, "memory_get", {"memory_id": memory_id})
        return [changed["content"], changed["metadata"]] + [
            await _total(s, "memory_list", {"user_id": u, "limit": 1, **scope})
            for u in (probe, "default") for scope in ({}, {"scope": "tool"})]

    async def kept() -> Any:
        return [(m["id"], m["content"], m["metadata"]) for scope in ({}, {"scope": "tool"})
                for m in (await ok(s, "memory_list", {"user_id": keeper, **scope}))["results"]]

    return Target(s, probe, throwaway, count, kept, {"memory_id": memory_id, "followup_id": followup_id})


async def persona_target(s: ClientSession) -> Target:
    keeper, probe, throwaway = [(await ok(s, "user_create", {"name": n}))["user_id"] for n in ("Keeper", "Probe", "Throw")]
    await ok(s, "profile_update", {"user_id": keeper, "patches": [
        {"op": "set", "field": "identity.location", "value": "Lyon"}, {"op": "add", "field": "preferences", "value": "tea"}]})

    async def count() -> Any:
        user = await ok(s, "user_get", {"user_id": probe})
        history = await ok(s, "profile_history", {"user_id": probe, "limit": 100})
        return [await _total(s, "user_list", {"limit": 1}), user["voice_samples"], user["face_samples"],
                user["facts"], len(history["changes"])]

    async def kept() -> Any:
        return await ok(s, "profile_get", {"user_id": keeper})

    return Target(s, probe, throwaway, count, kept)


async def research_target(s: ClientSession) -> Target:
    keeper, probe, throwaway = (f"{who}-{uuid.uuid4().hex[:8]}" for who in ("keeper", "probe", "throwaway"))
    await ok(s, "corpus_add", {"text": "Bees keep the keeper's garden in bloom.", "title": "bees", "user_id": keeper})

    async def count() -> Any:
        return [await _total(s, "corpus_list", {"user_id": u, "limit": 1}) for u in (probe, None)]

    async def kept() -> Any:
        return (await ok(s, "corpus_list", {"user_id": keeper}))["documents"]

    return Target(s, probe, throwaway, count, kept)


async def character_target(s: ClientSession) -> Target:
    async def nothing() -> Any:
        return None  # the character server stores nothing

    return Target(s, "", "", nothing, nothing)


TARGETS = {"memory": memory_target, "persona": persona_target, "character": character_target,
           "research": research_target}


@dataclass
class Tally:
    calls: int = 0
    errors: int = 0
    problems: list[str] = field(default_factory=list)


async def check_call(t: Target, tool: Tool, label: str, args: dict[str, Any], tally: Tally) -> None:
    """One call: a success or a helpful error; a refused write leaves the counts as they were."""
    reads_only = bool(tool.annotations and tool.annotations.read_only_hint)
    before = None if reads_only else await t.count()
    tally.calls += 1
    try:
        with anyio.fail_after(CALL_TIMEOUT):
            r = await call(t.session, tool.name, args)
        refused, text = r.is_error, r.text
    except MCPError as exc:  # a JSON-RPC error instead of a tool error
        refused, text = True, exc.error.message
    except TimeoutError:
        tally.problems.append(f"{tool.name} [{label}]: no answer within {CALL_TIMEOUT:.0f} s")
        return
    if not refused:
        return
    tally.errors += 1
    why = unhelpful(text, tool.name, args)
    if why:
        tally.problems.append(f"{tool.name} [{label}] {json.dumps(args, default=str)[:200]}: {why}")
    if before is not None and await t.count() != before:
        tally.problems.append(f"{tool.name} [{label}]: refused ({text[:120]!r}) but wrote something")


def generated(t: Target, tool: Tool, profile: str, tally: Tally, valid: list[dict[str, Any]]) -> None:
    """Runs in a worker thread: hypothesis draws arguments, each call goes through the event loop."""

    chosen = settings.get_profile(profile)
    if destructive(tool):  # each erasure compacts a store: fewer of them
        chosen = settings(chosen, max_examples=max(5, chosen.max_examples // 5))

    @settings(chosen)
    @given(from_schema({**tool.input_schema, "additionalProperties": False}))  # extra keys: invalid_variants
    def one(args: dict[str, Any]) -> None:
        args = t.adapt(tool, args)
        anyio.from_thread.run(check_call, t, tool, "generated", args, tally)
        if len(valid) < 3:
            valid.append(args)

    one()


@pytest.mark.parametrize("profile", [
    "fuzz-default", pytest.param("fuzz-slow", marks=[pytest.mark.slow, pytest.mark.timeout(3600)])])
@pytest.mark.parametrize("server", list(TARGETS))
async def test_every_tool_answers_fuzzed_arguments_helpfully(server: str, profile: str, tmp_path: Path) -> None:
    async with stdio_session(server, server_env(tmp_path)) as s:
        tools = (await s.list_tools()).tools
        assert tools
        t = await TARGETS[server](s)
        kept = await t.keeper()
        tally = Tally()
        for tool in tools:
            valid: list[dict[str, Any]] = []
            started = time.perf_counter()
            await anyio.to_thread.run_sync(generated, t, tool, profile, tally, valid)
            mid = time.perf_counter()
            base = t.adapt(tool, valid[0] if valid else {})
            for label, args in invalid_variants(tool.input_schema, base):
                await check_call(t, tool, label, args, tally)
            print(f"{tool.name}: generated {mid - started:.1f} s, invalid {time.perf_counter() - mid:.1f} s")
            with anyio.fail_after(30):
                await s.send_ping()  # still answering
        assert await t.keeper() == kept, "the data set aside before the fuzz changed"
        print(f"\n{server}: {len(tools)} tools, {tally.calls} fuzzed calls, {tally.errors} refused, "
              f"{len(tally.problems)} problems")
        assert not tally.problems, "\n".join(tally.problems[:40])
