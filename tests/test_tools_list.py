"""What a host learns from tools/list holds for every live tool of the four servers, new ones included:
a description, an outputSchema, annotations set on purpose (a tool that erases says it is destructive),
and one argument type under one name across the servers (an id one server accepts, all accept)."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from mcp.types import Tool

ERASING = re.compile(r"(^|_)(delete|forget|reset|merge|reassign)(_|$)")  # names of tools that erase or merge away


def tools(lists: dict[str, list[Tool]]) -> list[Tool]:
    return [t for listed in lists.values() for t in listed]


def test_every_tool_says_what_it_does_and_returns(tools_lists: dict[str, list[Tool]]) -> None:
    bad = [f"{t.name}: no description" for t in tools(tools_lists) if len((t.description or "").split()) < 3]
    bad += [f"{t.name}: no outputSchema" for t in tools(tools_lists)
            if not t.output_schema or t.output_schema.get("type") != "object"]
    assert not bad, "\n".join(bad)


def problems(tool: Tool) -> list[str]:
    """Why this tool's annotations do not tell a host what it does (empty when they do)."""
    a = tool.annotations
    if a is None:
        return [f"{tool.name}: no annotations (a host then assumes it may erase and reach the web)"]
    out = []
    if a.read_only_hint is None and not a.destructive_hint:  # destructive says it writes
        out.append("readOnlyHint unset")
    if a.open_world_hint is None:
        out.append("openWorldHint unset (the default says it reaches the web)")
    if not a.read_only_hint and a.destructive_hint is None:
        out.append("writes with destructiveHint unset (the default says it erases)")
    if ERASING.search(tool.name) and not (a.destructive_hint and not a.read_only_hint):
        out.append("erases or merges away, so destructiveHint must be true")
    if a.read_only_hint and a.destructive_hint:
        out.append("read-only and destructive at once")
    return [f"{tool.name}: {p}" for p in out]


def test_annotations_are_set_on_purpose(tools_lists: dict[str, list[Tool]]) -> None:
    bad = [p for t in tools(tools_lists) for p in problems(t)]
    assert not bad, "\n".join(bad)


def kind(schema: dict[str, Any], defs: dict[str, Any]) -> str:
    """An argument's JSON type, bounds aside: optional X is X, and one-X-or-a-list-of-them is X."""
    if "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    types = set()
    for s in schema.get("anyOf", [schema]):
        t = kind(s, defs) if "$ref" in s or "anyOf" in s else s.get("type", "any")
        if t == "array" and "items" in s:
            t = f"list of {kind(s['items'], defs)}"
        if t != "null":
            types.add(t)
    return " | ".join(sorted(t for t in types if t.removeprefix("list of ") == t or t[8:] not in types))


def id_bound(schema: dict[str, Any]) -> Any:
    alternatives = [s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"]
    return sorted(str(s.get("maxLength")) for s in alternatives)


def test_one_argument_type_under_one_name(tools_lists: dict[str, list[Tool]]) -> None:
    seen: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for t in tools(tools_lists):
        defs = t.input_schema.get("$defs", {})
        for name, schema in t.input_schema.get("properties", {}).items():
            what = kind(schema, defs)
            if name.endswith("_id"):  # the same id on every server: what one accepts, all accept
                what += f", maxLength {id_bound(schema)}"
            seen[name][what].append(t.name)
    bad = [f"{name}: " + "; ".join(f"{what} in {', '.join(users)}" for what, users in variants.items())
           for name, variants in seen.items() if len(variants) > 1]
    assert not bad, "\n".join(bad)
