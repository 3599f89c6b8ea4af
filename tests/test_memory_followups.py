"""Follow-ups from what people say: the rules on dated sentences, then the tools over stdio."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from mcp_servers.memory.followups import detect
from tests.support import call, server_env, stdio_session

LISBON = timezone(timedelta(hours=1))
SAID = datetime(2023, 5, 8, 13, 56, tzinfo=LISBON)  # Monday afternoon, Lisbon summer time


@pytest.mark.parametrize(
    ("text", "due", "kind"),
    [
        ("Alice: My exam is on Friday.", "2023-05-12T09:00:00+01:00", "event"),
        ("Remind me to call my mother tomorrow at six.", "2023-05-09T18:00:00+01:00", "reminder"),
        ("We fly to Lisbon in two weeks!", "2023-05-22T09:00:00+01:00", "event"),
        ("I have a dentist appointment on 17 May at 10:30am.", "2023-05-17T10:30:00+01:00", "event"),
        ("The interview is next Tuesday at 2pm, wish me luck.", "2023-05-16T14:00:00+01:00", "event"),
        ("I'm going to visit grandma next month.", "2023-06-01T09:00:00+01:00", "event"),
        ("I need to send the report tonight at 9pm.", "2023-05-08T21:00:00+01:00", "event"),
    ],
)
def test_commitments_and_future_events(text: str, due: str, kind: str) -> None:
    found = detect(text, SAID)
    assert [(f.due.isoformat(), f.kind) for f in found] == [(due, kind)]


@pytest.mark.parametrize(
    "text",
    [
        "My exam was yesterday and it went fine.",  # past
        "We flew to Lisbon two weeks ago.",  # past
        "I went to a concert last Friday.",  # past
        "Maybe someday I'll fly to Japan.",  # vague wish
        "I would love to visit Peru next year.",  # a wish, not a plan
        "I'll call my mother.",  # no time named
        "Are you free tomorrow?",  # a question
        "I like pottery classes.",
    ],
)
def test_not_follow_ups(text: str) -> None:
    assert detect(text, SAID) == []


def test_due_in_the_persons_zone() -> None:
    # said at 23:30 on Monday in Tokyo (Monday 14:30 UTC): "tomorrow" is Tuesday in Tokyo
    tokyo = timezone(timedelta(hours=9))
    found = detect("Remind me tomorrow at 8am to water the plants.", datetime(2023, 5, 8, 23, 30, tzinfo=tokyo))
    assert [f.due.isoformat() for f in found] == ["2023-05-09T08:00:00+09:00"]


def memory(user: str, text: str, when: str) -> dict[str, Any]:
    return {"content": text, "user_id": user, "occurred_at": when, "infer": False}


async def test_follow_up_tools_over_stdio(tmp_path: Path) -> None:
    async with stdio_session("memory", server_env(tmp_path)) as s:
        res = await call(s, "memory_add_batch", {"items": [
            memory("ana", "Ana: My exam is on Friday, I'm nervous.", "2023-05-08T13:56:00+01:00"),
            memory("ana", "Ana: Remind me to call my mother tomorrow at six.", "2023-05-08T13:56:00+01:00"),
            memory("ana", "Ana: My exam last week went well.", "2023-05-08T13:57:00+01:00"),
            memory("ben", "Ben: We fly to Lisbon in two weeks.", "2023-05-08T09:00:00+00:00"),
        ]})
        assert not res.is_error, res.text
        ids = [r["id"] for r in res.data["results"]]

        listed = await call(s, "followup_list", {"user_id": "ana"})
        assert not listed.is_error, listed.text
        got = [(f["due_at"], f["kind"], f["memory_id"]) for f in listed.data["results"]]
        assert got == [("2023-05-09T18:00:00+01:00", "reminder", ids[1]), ("2023-05-12T09:00:00+01:00", "event", ids[0])]
        assert "Remind me to call my mother" in listed.text

        soon = await call(s, "followup_list", {"user_id": "ana", "due_before": "2023-05-10T00:00:00+01:00"})
        assert [f["memory_id"] for f in soon.data["results"]] == [ids[1]]
        paged = await call(s, "followup_list", {"user_id": "ana", "limit": 1})
        rest = await call(s, "followup_list", {"user_id": "ana", "limit": 1, "cursor": paged.data["next_cursor"]})
        assert [f["memory_id"] for f in paged.data["results"] + rest.data["results"]] == [ids[1], ids[0]]

        exam, call_mum = listed.data["results"][1], listed.data["results"][0]
        done = await call(s, "followup_update", {"followup_id": call_mum["id"], "status": "done"})
        assert done.data["status"] == "done"
        moved = await call(s, "followup_update", {"followup_id": exam["id"], "due_at": "2023-05-13T10:00:00+01:00"})
        assert moved.data["due_at"] == "2023-05-13T10:00:00+01:00"
        open_ = await call(s, "followup_list", {"user_id": "ana"})
        assert [f["id"] for f in open_.data["results"]] == [exam["id"]]
        every = await call(s, "followup_list", {"user_id": "ana", "include_done": True})
        assert {f["status"] for f in every.data["results"]} == {"open", "done"}

        bad = await call(s, "followup_update", {"followup_id": "nope", "status": "done"})
        assert bad.is_error and "No follow-up" in bad.text
        empty = await call(s, "followup_update", {"followup_id": exam["id"]})
        assert empty.is_error and "Nothing to change" in empty.text

        # the source memory edited to a past event, then deleted: its follow-up goes with it
        res = await call(s, "memory_update", {"memory_id": ids[0], "content": "Ana: My exam was on Friday."})
        assert not res.is_error, res.text
        assert (await call(s, "followup_list", {"user_id": "ana"})).data["results"] == []
        res = await call(s, "memory_delete", {"memory_id": ids[1]})
        assert not res.is_error, res.text
        assert (await call(s, "followup_list", {"user_id": "ana", "include_done": True})).data["total"] == 0

        # forgetting a user leaves none of their follow-ups
        assert (await call(s, "followup_list", {"user_id": "ben"})).data["total"] == 1
        res = await call(s, "memory_forget_user", {"user_id": "ben"})
        assert not res.is_error, res.text
        assert (await call(s, "followup_list", {"user_id": "ben", "include_done": True})).data["total"] == 0
