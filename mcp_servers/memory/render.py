"""Short text renderings of results, and exports, for hosts and people that read text."""

from __future__ import annotations

import json
from collections.abc import Sequence

from .models import (
    AddResult,
    DeleteResult,
    ExportResult,
    Followup,
    ForgetResult,
    HistoryResult,
    MemoryItem,
    ReassignResult,
    ReflectResult,
    ToolExperience,
    ToolExperienceResult,
)


def render_add(result: AddResult) -> str:
    counts: dict[str, int] = {}
    for e in result.results:
        counts[e.event] = counts.get(e.event, 0) + 1
    summary = ", ".join(f"{n} {ev.lower()}" for ev, n in counts.items()) or "nothing stored"
    ids = ", ".join(e.id for e in result.results[:5])
    return f"Memory ({result.mode}): {summary}. {('ids: ' + ids) if ids else ''} {result.note or ''}".strip()


def render_items(items: Sequence[MemoryItem], empty: str) -> str:
    if not items:
        return empty
    weak = "" if any(m.relevant is not False for m in items) else "Nothing matches well; the nearest:\n"
    return weak + "\n".join(
        f"- {m.content}" + (f"  [{m.occurred_at[:10]}]" if m.occurred_at else "") + f"  (id {m.id})" for m in items
    )


def render_visibility(item: MemoryItem) -> str:
    heard = f" (heard by {', '.join(item.heard_by)})" if item.visibility == "present" and item.heard_by else ""
    return f"Memory {item.id} is now {item.visibility}{heard}."


def export_markdown(items: Sequence[MemoryItem]) -> str:
    out = ["# Memories", ""]
    for scope in ("user", "session", "avatar", "tool"):
        group = [m for m in items if m.scope == scope]
        if not group:
            continue
        out += [f"## {scope}", ""]
        out += [f"- {m.occurred_at[:16] if m.occurred_at else ''} {m.content}".rstrip() for m in group]
        out.append("")
    return "\n".join(out)


def export_json(items: Sequence[MemoryItem]) -> str:
    return json.dumps([m.model_dump(mode="json") for m in items], ensure_ascii=False, indent=1)


def render_followups(items: Sequence[Followup]) -> str:
    if not items:
        return "No follow-ups."
    return "\n".join(f"- {f.due_at[:16]} [{f.status}] {f.text}  (id {f.id}, from memory {f.memory_id})" for f in items)


def render_memory(m: MemoryItem) -> str:
    when = f"  [{m.occurred_at[:10]}]" if m.occurred_at else ""
    return f"{m.content}{when}  ({m.scope}, {m.visibility}, id {m.id})"


def render_deleted(r: DeleteResult) -> str:
    return f"Deleted memory {r.id}; its history records the deletion."


def render_history(r: HistoryResult) -> str:
    lines = [f"- {e.at[:19]} {e.event}: " + (f"{e.old} -> {e.new}" if e.old and e.new else e.new or e.old or "")
             for e in r.events]
    return f"History of memory {r.id}:\n" + "\n".join(lines)


def render_forgot(r: ForgetResult) -> str:
    return (f"Erased {r.user_id}: {r.memories_deleted} memories, {r.history_events_deleted} history events, "
            f"{r.exports_deleted} exports.")


def render_reassigned(r: ReassignResult) -> str:
    return f"Moved {r.memories_moved} memories of {r.user_id} to {r.into_user_id}."


def render_export(r: ExportResult) -> str:
    cut = " (cut here; the export there has everything)" if r.truncated else ""
    return f"{r.count} memories exported to {r.uri}{cut}.\n\n{r.content}"


def render_experiences(r: ToolExperienceResult) -> str:
    if not r.results:
        return "No past calls for a task like this."
    return "\n".join(_experience(e) for e in r.results)


def _experience(e: ToolExperience) -> str:
    if e.lesson:
        return f"- {e.lesson}"
    return (f"- {e.tool} {'ok' if e.success else 'failed'}" + (f" in {e.latency_ms:.0f} ms" if e.latency_ms is not None else "")
            + (f" for {e.task}" if e.task else "") + (f": {e.outcome}" if e.outcome else ""))


def render_reflect(result: ReflectResult) -> str:
    counts: dict[str, int] = {}
    for e in result.results:
        counts[e.event] = counts.get(e.event, 0) + 1
    summary = ", ".join(f"{n} {ev.lower()}" for ev, n in counts.items()) or "nothing to derive yet"
    kinds = "insights" if result.mode == "llm" else "entity cards"
    whose = result.user_id if result.user_id is not None else "what people shared with everyone"
    lines = [f"Reflection on {whose} ({kinds}): {summary}. {result.note or ''}".strip()]
    lines += [f"- {e.about}  (id {e.id}, {e.visibility}, from {len(e.derived_from)} memories)"
              for e in result.results if e.event != "DELETE"]
    return "\n".join(lines)
