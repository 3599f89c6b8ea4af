"""The parts of a group conversation that need no MCP server: presence, addressing (with the LLM as
judge over the real OpenAI wire protocol), the character on the room's data channel (through
livekit's own `rtc.LocalParticipant`, as far as it goes without a LiveKit server), the floor that
hears several participants one at a time, and who a participant's voice says they are."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from livekit import rtc
from livekit.plugins import openai
from livekit.rtc._proto import participant_pb2
from livekit.rtc._utils import BroadcastQueue

from agent.addressing import Addressing, llm_judge
from agent.character import CharacterLink
from agent.config import CharacterConfig, GroupConfig
from agent.floor import Floor
from agent.mcp_sessions import McpHub
from agent.participant import vouched, vouched_parts
from agent.presence import Presence
from agent.replay import Recording
from agent.speaker import Speaker
from agent.worker import hear_everyone
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


def _tone(at_s: float, length_s: float, total_s: float, freq: float) -> np.ndarray:
    t = np.arange(int(total_s * 16_000)) / 16_000
    on = (t >= at_s) & (t < at_s + length_s)
    return (on * 8000 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


async def test_the_floor_hears_one_participant_at_a_time_and_loses_no_one() -> None:
    """george speaks first; lucas starts while george holds the floor: lucas is heard right after
    george's turn is released, from just before his first sound, whole."""
    floor = Floor()
    george, lucas = Recording(_tone(0.2, 0.5, 1.0, 200), 16_000), Recording(_tone(0.4, 0.5, 1.0, 900), 16_000)
    floor.add("george", george)
    floor.add("lucas", lucas)
    assert sorted(floor.participants) == ["george", "lucas"]
    await asyncio.gather(george.play(), lucas.play())
    spoken = await _drain(floor)  # what reached the session while george held the floor
    assert floor.holder == "george"
    assert _dominant(spoken) == 200 and _loud(spoken) == _loud(george.samples)
    floor.release()  # george's turn is decided
    assert floor.holder == "lucas"
    said = await _drain(floor)
    assert _dominant(said) == 900 and _loud(said) == _loud(lucas.samples)  # all of it, though he spoke meanwhile
    floor.remove("lucas")
    assert floor.holder is None and floor.participants == ["george"]
    await floor.aclose()


async def _drain(floor: Floor) -> np.ndarray:
    frames = []
    while True:
        try:
            frame = await asyncio.wait_for(floor.__anext__(), 0.5)
        except TimeoutError:
            return np.concatenate(frames) if frames else np.zeros(0, dtype=np.int16)
        frames.append(np.frombuffer(frame.data, dtype=np.int16))


def _loud(x: np.ndarray) -> int:
    return int((np.abs(x) > 4000).sum())


def _dominant(x: np.ndarray) -> int:
    spectrum = np.abs(np.fft.rfft(x.astype(np.float32)))
    return int(round(np.fft.rfftfreq(len(x), 1 / 16_000)[int(np.argmax(spectrum))] / 100) * 100)


async def test_every_room_participant_is_heard_through_livekits_own_audio_input() -> None:
    """The worker's wiring against livekit's `rtc.Room` (no server: no track ever arrives): each
    participant that connects gets livekit's participant audio input in the floor, until they leave."""
    room, floor = rtc.Room(), Floor()
    hear_everyone(room, floor)

    def participant(identity: str) -> rtc.RemoteParticipant:
        owned = participant_pb2.OwnedParticipant()
        owned.info.identity = identity
        return rtc.RemoteParticipant(owned)

    george, lucas = participant("george"), participant("lucas")
    room.emit("participant_connected", george)
    room.emit("participant_connected", lucas)
    assert sorted(floor.participants) == ["george", "lucas"]
    room.emit("participant_disconnected", george)
    await asyncio.sleep(0)
    assert floor.participants == ["lucas"]
    await floor.aclose()


def test_a_participants_identity_is_a_prior_their_voice_confirms() -> None:
    assert vouched(Speaker("george", "George", "known", 0.9), "george").decision == "known"
    assert vouched(Speaker("george", None, "uncertain", 0.74), "george").decision == "known"  # the prior settles it
    other = vouched(Speaker("jackson", "Jackson", "known", 0.9), "george")
    assert (other.user_id, other.decision, other.resembles[0]) == ("george", "uncertain", "jackson")
    assert vouched(None, "george").decision == "uncertain"


def test_a_participants_identity_is_the_prior_of_each_part_of_a_split_turn() -> None:
    jackson = Speaker("jackson", "Jackson", "known", 0.9)
    theirs = vouched_parts([Speaker("george", None, "uncertain", 0.74), jackson], "george")
    assert [(s.user_id, s.decision) for s in theirs if s] == [("george", "known"), ("jackson", "known")]
    neither = vouched_parts([jackson, None], "george")  # identity and voices disagree: nobody is trusted
    assert [(s.user_id, s.decision) for s in neither if s] == [("jackson", "uncertain"), ("george", "uncertain")]
