"""Whose memory a turn goes to is decided by who was present and how sure the voice is, never by
whether its identification finished before the turn ended or after (real persona server, FSDD voices)."""

from __future__ import annotations

import pytest

from agent.config import McpServerConfig, TurnConfig
from agent.mcp_sessions import McpHub
from agent.speaker import Speaker
from agent.turn import TurnHooks
from tests.conversation import enroll, turn_wav
from tests.datasets import fsdd, needs_fsdd
from tests.support import server_env

pytestmark = needs_fsdd


async def test_an_unsure_voice_is_owned_alike_whether_identified_early_or_late(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """Alone, an unsure voice's turn goes to the closest voice's memory; in company, to nobody's."""
    env = server_env(tmp_path_factory.mktemp("attribution"))
    utts = fsdd(digits=6)
    await enroll(env, utts)
    hub = McpHub([McpServerConfig(name="persona", timeout=120)], env)
    await hub.start()
    wav = turn_wav(utts["nicolas"][4])  # close to an enrolled voice, not close enough: uncertain
    try:
        owners: dict[tuple[bool, bool], str | None] = {}
        for company in (False, True):
            for early in (False, True):
                hooks = TurnHooks(hub, TurnConfig(recall=False, identify_budget_ms=60_000), "s")  # what, not how fast
                if company:
                    hooks.speakers.presence.heard(Speaker("george", "George", "known"))
                if early:  # identified in the silence that ends the turn, done before the turn's hooks run
                    hooks.speakers.hear("speech_stopped", wav)
                    task = hooks.speakers.pending()
                    assert task is not None
                    await task
                prep = await hooks.prepare("hello", None if early else wav)
                assert prep.speaker is not None and prep.speaker.decision == "uncertain", prep.speaker
                owners[(company, early)] = prep.owner
        closest = owners[(False, False)]
        assert closest is not None and closest != "george"
        assert owners == {(False, False): closest, (False, True): closest, (True, False): None, (True, True): None}
    finally:
        await hub.aclose()
