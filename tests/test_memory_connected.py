"""Connected recall: names and times extracted at write time, followed at search, over stdio.

The rules of `entities` and `dates` on sentences written for them, then a small conversation in
which the second fact of a joined question shares only a name with the first, a relative date
told days later, and a "when" question, all through a real MCP client.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from mcp_servers.memory.dates import mentions
from mcp_servers.memory.entities import entities
from tests.support import call, server_env, stdio_session
from tests.test_memory_retrieval import contents as retrieval_contents

SAID = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)  # a Monday


def days(text: str, when: datetime = SAID) -> list[tuple[date, int]]:
    """Each mention as (its first day in the speaker's zone, its length in days)."""
    tz = when.tzinfo
    return [(datetime.fromtimestamp(a, tz).date(), round((b - a) / 86400)) for a, b in mentions(text, when)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I went to a support group yesterday.", [(date(2023, 5, 7), 1)]),
        ("We went camping two weekends ago.", [(date(2023, 4, 29), 2)]),
        ("A couple of days ago I ran a charity race.", [(date(2023, 5, 6), 1)]),
        ("I ran a charity race last Saturday.", [(date(2023, 5, 6), 1)]),
        ("My exam is on Friday.", [(date(2023, 5, 12), 1)]),
        ("I saw the play on Friday.", [(date(2023, 5, 5), 1)]),
        ("We fly to Lisbon in two weeks.", [(date(2023, 5, 22), 7)]),
        ("Remind me to call my mother tomorrow at six.", [(date(2023, 5, 9), 1)]),
        ("Next month I start a new job.", [(date(2023, 6, 1), 30)]),
        ("Back on 3 June 2022 we met; in July we moved.", [(date(2022, 6, 3), 1), (date(2023, 7, 1), 31)]),
        ("I may go, or I may not.", []),
        ("Nothing about time here.", []),
    ],
)
def test_mentions_resolved_against_when_said(text: str, expected: list[tuple[date, int]]) -> None:
    assert days(text) == expected


def test_mentions_in_the_speakers_time_zone() -> None:
    # 01:00 on Tuesday in Tokyo is still Monday in UTC: "yesterday" is Monday there
    tokyo = datetime(2023, 5, 9, 1, 0, tzinfo=timezone(timedelta(hours=9)))
    assert days("I went hiking yesterday.", tokyo) == [(date(2023, 5, 8), 1)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Caroline: Thanks, Melanie! My grandma gave it to me in my home country, Sweden.", ["melanie", "sweden"]),
        ('Melanie: I loved reading "Charlotte\'s Web" as a kid.', ["charlotte web"]),
        ("Jon: Yeah I met Sarah's brother at the LGBTQ centre in New York last Friday.", ["sarah", "lgbtq", "new york"]),
        ("Wow. Great. In June we go. Thanks!", []),
    ],
)
def test_entities(text: str, expected: list[str]) -> None:
    assert entities(text) == expected


USER = "connected"
SESSIONS = {  # session: (when its lines were said, its lines)
    "s1": ("2023-05-08T13:56:00", ["Caroline: The support group was lovely, I met Aurelio there.",
                                   "Melanie: I'm glad the support group went well for you.",
                                   "Caroline: The support group helps me a lot, I keep going back."]),
    "s2": ("2023-06-20T09:00:00", ["Melanie: Did the group leader recommend anything for the kids?",
                                   "Caroline: My friend from work recommended a pottery class."]),
    "s3": ("2023-07-12T18:00:00", ["Caroline: Two days ago I ran my first marathon!",
                                   "Caroline: I ate a huge bowl of pasta today.",
                                   "Melanie: The marathon crowd must have been loud."]),
    "s4": ("2023-06-20T09:00:00", ["Caroline: Beatrix, a friend, says everyone should read Piranesi."]),
    "s5": ("2023-06-21T09:00:00", ["Caroline: Aurelio says everyone should read Braiding Sweetgrass."]),
}
CONVERSATION = [{"content": text, "user_id": USER, "session_id": session, "occurred_at": when, "infer": False}
                for session, (when, lines) in SESSIONS.items() for text in lines]
LINKED, UNLINKED, MARATHON = CONVERSATION[9], CONVERSATION[8], CONVERSATION[5]


async def contents(session: Any, query: str, **args: Any) -> list[str]:
    return await retrieval_contents(session, query, USER, **args)


async def test_connected_recall_over_stdio(tmp_path: Path) -> None:
    async with stdio_session("memory", server_env(tmp_path)) as s:
        res = await call(s, "memory_add_batch", {"items": CONVERSATION})
        assert not res.is_error, res.text

        # the second fact shares only a name with the first: found through it, above a closer
        # match of the question's words that the first fact does not name
        question = "What did the friend Caroline met at the support group recommend?"
        hits = await contents(s, question, limit=10)
        assert hits[0] == CONVERSATION[0]["content"]
        assert hits.index(LINKED["content"]) < hits.index(UNLINKED["content"])

        # "two days ago", said on 12 July, is 10 July: found for that day, not the pasta told on the 12th
        hits = await contents(s, "What did Caroline do on 10 July, 2023?", limit=1)
        assert hits == [MARATHON["content"]]

        # "when" questions prefer the memory that says when
        hits = await contents(s, "When did Caroline run a marathon?", limit=1)
        assert hits == [MARATHON["content"]]


        # the links follow an edit: the name gone from the first fact, the second is no longer lifted
        listed = await call(s, "memory_list", {"user_id": USER, "limit": 20})
        first = next(m for m in listed.data["results"] if m["content"] == CONVERSATION[0]["content"])
        res = await call(s, "memory_update", {"memory_id": first["id"], "content": "Caroline: The support group was lovely."})
        assert not res.is_error, res.text
        hits = await contents(s, question, limit=10)
        assert hits.index(LINKED["content"]) > hits.index(UNLINKED["content"])
