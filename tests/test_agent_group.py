"""The parts of a group conversation that need no MCP server: presence, addressing (with the LLM as
judge over the real OpenAI wire protocol), the character on the room's data channel (through
livekit's own `rtc.LocalParticipant`, as far as it goes without a LiveKit server)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from livekit import rtc
from livekit.plugins import openai
from livekit.rtc._proto import participant_pb2
from livekit.rtc._utils import BroadcastQueue

from agent.addressing import Addressing, llm_judge
from agent.character import CharacterLink
from agent.config import CharacterConfig, GroupConfig
from agent.mcp_sessions import McpHub
from agent.presence import Presence
from agent.speaker import Speaker
from character_bridge.protocol import parse_event
from tests.fakes.openai_server import FakeOpenAI, Reply


def test_presence_says_who_is_here_and_someone_for_anyone_unknown() -> None:
    presence = Presence(GroupConfig(unknown_present_s=0.2))
    presence.heard(Speaker("george", "George", "known", 0.9))
    presence.heard(Speaker("lucas", None, "provisional", 0.8))
    assert presence.audience("lucas") == ["lucas", "george"]
    presence.heard(Speaker("lucas", None, "uncertain", 0.5))  # unsure: maybe a stranger
    assert set(presence.audience("lucas")) == {"lucas", "george", "someone"}
    presence.joined("phone-1")
    presence.link("phone-1", "george")  # the participant's voice was george's
    presence.left_room("phone-1")
    assert [p.user_id for p in presence.gone()] == ["george"]
    assert "george" not in presence.audience()
    presence.seen_face("jackson", "Jackson", 0.95)
    assert "Jackson (user id jackson)" in presence.describe()


@pytest.fixture(scope="module")
def judge_llm() -> Iterator[FakeOpenAI]:
    def answer(body: dict[str, Any]) -> Reply:
        said = body["messages"][-1]["content"]
        return Reply(content="yes" if "could you" in said else "no")

    with FakeOpenAI(answer) as server:
        yield server


async def test_addressing_rules_each_say_why(judge_llm: FakeOpenAI) -> None:
    presence = Presence()
    model = openai.LLM(model="fake", base_url=judge_llm.base_url, api_key="k")
    ears = Addressing("Alpha", GroupConfig(names=["Al"]), llm_judge(model, "Alpha"))
    ears.known_names = {"Jackson"}
    george = Speaker("george", "George", "known")
    presence.heard(george)
    me = presence.people()[0]

    async def why(text: str, facing: bool = False) -> tuple[bool, str]:
        decided = await ears.decide(text, me, presence.people(), facing)
        return decided.yes, decided.why

    assert await why("Tell me a joke") == (True, "alone")
    presence.heard(Speaker("lucas", "Lucas", "known"))
    assert await why("Al, tell me a joke") == (True, "name")
    assert await why("Lucas, how was your day?") == (False, "other name: Lucas")
    assert await why("Have you seen Jackson today?") == (False, "other name: Jackson")
    assert await why("It was a long day") == (False, "llm")
    assert await why("It was a long day", facing=True) == (True, "face")
    ears.answered("george")
    assert await why("and what about tomorrow?") == (True, "follow-up")
    ears.answered("lucas")
    assert await why("could you help me") == (True, "llm")
    judge_requests = [b for b in judge_llm.requests if "messages" in b]
    assert judge_requests and all("Lucas" in b["messages"][-1]["content"] for b in judge_requests)
    cues_only = Addressing("Alpha", GroupConfig(llm_judge=False), llm_judge(model, "Alpha"))
    assert (await cues_only.decide("could you help me", me, presence.people())).why == "in company"


class Room:
    """What a LocalParticipant offers for data messages, keeping what it is given."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, str]] = []

    async def publish_data(self, payload: bytes | str, *, reliable: bool = True,
                           destination_identities: list[str] = [], topic: str = "") -> None:  # noqa: B006
        self.sent.append((payload if isinstance(payload, bytes) else payload.encode(), topic))


async def test_character_events_go_to_the_room_in_the_character_protocol(caplog: pytest.LogCaptureFixture) -> None:
    link = CharacterLink(McpHub([]), CharacterConfig())  # no character server: the room still gets them
    room = Room()
    link.publish_to(room, "alphaavatar.character")
    link.state("thinking")
    link.express("happy", 0.5)
    link.look_at("george")
    link.look_at("lucas")
    link.speak("Hello there.", b"RIFF")
    await link.drain(5)
    events = [parse_event(payload) for payload, _ in room.sent]
    assert {topic for _, topic in room.sent} == {"alphaavatar.character"}
    assert [e.kind for e in events] == ["state", "expression", "gaze", "gaze", "speech"]
    assert events[2].x != events[3].x and events[4].text == "Hello there."
    await link.aclose()

    # livekit's own participant: our call fits its publish_data and reaches its FFI, which refuses a
    # participant that is in no room; the character goes on, and says so in the log.
    owned = participant_pb2.OwnedParticipant()
    owned.info.identity = "avatar"
    link = CharacterLink(McpHub([]), CharacterConfig())
    link.publish_to(rtc.LocalParticipant(BroadcastQueue(), owned), "alphaavatar.character")
    with caplog.at_level(logging.WARNING):
        link.state("speaking")
        await asyncio.wait_for(link.drain(5), 10)
        link.state("listening")
        await link.drain(5)
    assert sum("character: publish failed" in r.getMessage() for r in caplog.records) == 2
    await link.aclose()
