"""The agent's contracts hold against the live servers: every tool name it calls is in their
tools/list, and every view it reads an output through (agent.contracts) fits that tool's published
outputSchema — each field the view declares is there, with a type the view accepts, and a field
the view requires is always sent. A server changing an output the agent reads fails here."""

from __future__ import annotations

import ast
import types
import typing
from pathlib import Path
from typing import Any

import pytest
from mcp.types import Tool
from pydantic import BaseModel, Field

from agent import contracts
from agent.contracts import View

JSON_TYPES = {str: {"string"}, bool: {"boolean"}, int: {"integer"}, float: {"number", "integer"},
              type(None): {"null"}, list: {"array"}, dict: {"object"}}


@pytest.fixture(scope="module")
def live_tools(tools_lists: dict[str, list[Tool]]) -> dict[str, dict[str, Any]]:
    """Every live tool's outputSchema (empty when it publishes none), by name."""
    return {tool.name: tool.output_schema or {} for tools in tools_lists.values() for tool in tools}


class Schema:
    """A JSON schema document: follows `$ref`s into its `$defs`."""

    def __init__(self, root: dict[str, Any]):
        self.defs = root.get("$defs", {})

    def resolve(self, node: dict[str, Any] | bool) -> dict[str, Any]:
        if not isinstance(node, dict):  # `true`: anything (an open dict's values)
            return {}
        while "$ref" in node:
            node = self.defs[node["$ref"].rsplit("/", 1)[-1]]
        return node

    def branches(self, node: dict[str, Any] | bool) -> list[dict[str, Any]]:
        """The alternatives a value may take (anyOf/oneOf flattened, refs followed)."""
        node = self.resolve(node)
        alts = node.get("anyOf") or node.get("oneOf")
        return [b for alt in alts for b in self.branches(alt)] if alts else [node]

    def types(self, node: dict[str, Any]) -> set[str] | None:
        """The JSON types a value may have (None: any)."""
        out: set[str] = set()
        for b in self.branches(node):
            if "type" in b:
                out |= set(b["type"]) if isinstance(b["type"], list) else {b["type"]}
            elif "enum" in b or "const" in b:
                out |= {_json_type(v) for v in b.get("enum", [b.get("const")])}
            else:
                return None
        return out


def _json_type(value: Any) -> str:
    return next(t for py, ts in JSON_TYPES.items() if isinstance(value, py) and py is not int for t in ts) \
        if not isinstance(value, int) or isinstance(value, bool) else "integer"


def _parts(annotation: Any) -> list[Any]:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return list(typing.get_args(annotation))
    return [annotation]


def _accepts(annotation: Any) -> set[str] | None:
    """The JSON types a view field takes (None: any)."""
    out: set[str] = set()
    for part in _parts(annotation):
        origin = typing.get_origin(part) or part
        if part is Any:
            return None
        if origin is typing.Literal:
            out |= {_json_type(v) for v in typing.get_args(part)}
        elif isinstance(origin, type) and issubclass(origin, BaseModel):
            out.add("object")
        else:
            out |= JSON_TYPES[origin]
    return out


def problems(view: type[BaseModel], schema: Schema, node: dict[str, Any], path: str) -> list[str]:
    """Where `view` does not fit the object schema `node` (empty: it fits)."""
    objects = [b for b in schema.branches(node) if b.get("type") == "object" or "properties" in b]
    if not objects:
        return [f"{path}: the schema has no object here"]
    node = objects[0]
    props, required = node.get("properties", {}), set(node.get("required", []))
    out: list[str] = []
    for name, field in view.model_fields.items():
        where = f"{path}.{name}"
        if name not in props:
            out.append(f"{where}: not in the schema")
            continue
        prop = props[name]
        if field.is_required() and name not in required and "default" not in schema.resolve(prop):
            out.append(f"{where}: the view needs it, the schema may leave it out")
        out += _fits(field.annotation, schema, prop, where)
    return out


def _fits(annotation: Any, schema: Schema, node: dict[str, Any] | bool, where: str) -> list[str]:
    """Where a value the schema `node` allows would not fit `annotation`."""
    have, want = schema.types(node), _accepts(annotation)
    if have is not None and want is not None and not have <= want:
        return [f"{where}: the schema sends {sorted(have)}, the view takes {sorted(want)}"]
    return _nested(annotation, schema, node, where)


def _nested(annotation: Any, schema: Schema, node: dict[str, Any] | bool, where: str) -> list[str]:
    """Problems inside a field's value: a nested view, list items, dict values, literal values."""
    out: list[str] = []
    for part in _parts(annotation):
        origin, args = typing.get_origin(part) or part, typing.get_args(part)
        alts = schema.branches(node)
        if isinstance(origin, type) and issubclass(origin, BaseModel):
            out += problems(origin, schema, node, where)
        elif origin is list and args:
            out += [p for b in alts if b.get("type") == "array"
                    for p in _fits(args[0], schema, b.get("items", True), f"{where}[]")]
        elif origin is dict and len(args) == 2:
            for b in alts:
                if b.get("type") == "object":  # an open dict's values, or a fixed object's properties
                    values = list(b.get("properties", {}).values()) or [b.get("additionalProperties", True)]
                    out += [p for v in values for p in _fits(args[1], schema, v, f"{where}{{}}")]
        elif origin is typing.Literal:
            sent = {v for b in alts for v in b.get("enum", [b["const"]] if "const" in b else [])}
            if sent - set(args):
                out.append(f"{where}: the schema sends {sorted(map(str, sent - set(args)))}, the view does not take")
    return out


def test_every_tool_the_agent_calls_is_served(live_tools: dict[str, dict[str, Any]]) -> None:
    missing = [name for name in contracts.TOOLS if name not in live_tools]
    assert not missing, f"the agent calls tools no server offers: {missing}"
    assert set(contracts.VIEWS) <= set(contracts.TOOLS)


@pytest.mark.parametrize("tool", sorted(contracts.VIEWS))
def test_each_view_fits_the_published_output_schema(tool: str, live_tools: dict[str, dict[str, Any]]) -> None:
    root = live_tools.get(tool)
    assert root, f"{tool} publishes no outputSchema"
    view = contracts.VIEWS[tool]
    # a field the server adds must never break the agent: a view ignores what it does not read, or
    # (Profile: every section goes to the LLM) passes it through
    assert view.model_config.get("extra") in ("ignore", "allow"), f"{view.__name__} must not refuse fields it does not read"
    assert not problems(view, Schema(root), root, view.__name__)


class _Renamed(View):  # what a server renaming `decision` and retyping `score` would look like to the agent
    verdict: str
    score: str
    candidates: list[contracts.Candidate] = Field(default_factory=list)


class _Stricter(View):  # a view requiring what the server may leave out, and narrower than what it sends
    user_id: str
    decision: typing.Literal["known"]
    candidates: list[dict[str, int]] = Field(default_factory=list)


def test_the_check_catches_a_view_that_does_not_fit(live_tools: dict[str, dict[str, Any]]) -> None:
    root = live_tools[contracts.SPEAKER_IDENTIFY]
    found = problems(_Renamed, Schema(root), root, "_Renamed")
    assert any("verdict: not in the schema" in p for p in found), found
    assert any("score: the schema sends" in p for p in found), found
    found = problems(_Stricter, Schema(root), root, "_Stricter")
    assert any("user_id: the schema sends ['null', 'string']" in p for p in found), found
    assert any("decision: the schema sends ['uncertain', 'unknown']" in p for p in found), found
    assert any("candidates[]{}" in p for p in found), found
    optional = {"type": "object", "properties": {"user_id": {"type": "string"}}}  # neither required nor defaulted
    assert problems(_Stricter, Schema(optional), optional, "_Stricter")[0] == \
        "_Stricter.user_id: the view needs it, the schema may leave it out"


def test_the_agent_reads_each_tool_through_its_checked_view() -> None:
    """Every `call_view(TOOL, args, View)` in the agent uses the view `VIEWS` names for that tool (the
    one checked above), and no call in the agent spells a tool name out instead of using its constant."""
    agent = Path(contracts.__file__).parent
    used: list[tuple[str, str]] = []
    for path in sorted(agent.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "call_view":
                tool, view = node.args[0], node.args[2]
                tool_name = tool.attr if isinstance(tool, ast.Attribute) else getattr(tool, "id", "?")
                used.append((getattr(contracts, tool_name), getattr(view, "id", getattr(view, "attr", "?"))))
            if isinstance(node, ast.Call) and node.args and isinstance(first := node.args[0], ast.Constant) \
                    and first.value in contracts.TOOLS:  # hub.has("memory_search"), call_data("user_merge", …)
                raise AssertionError(f"{path.name}:{node.lineno} spells the tool {first.value!r}: use agent.contracts")
    assert used, "the agent reads no output through a view"
    assert {(tool, view) for tool, view in used} <= {(t, v.__name__) for t, v in contracts.VIEWS.items()}
    assert {tool for tool, _ in used} == set(contracts.VIEWS)
