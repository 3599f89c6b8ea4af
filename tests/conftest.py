"""Fixtures shared by every test module: what is costly to start is started once per session."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from mcp import ClientSession
from mcp.types import Implementation, Tool

from tests.support import held_stdio_session, server_env, stdio_session

SERVERS = ("memory", "persona", "character", "research")


@dataclass(frozen=True)
class Surface:
    """What a fresh server publishes: its serverInfo and its tools/list."""

    info: Implementation
    tools: list[Tool]


@pytest.fixture(scope="session")
async def surfaces(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Surface]:
    """Each of the four servers started once over stdio on fresh data, in server order."""
    home = tmp_path_factory.mktemp("surfaces")
    out: dict[str, Surface] = {}
    for server in SERVERS:
        async with stdio_session(server, server_env(home / server)) as session:
            assert session.server_info is not None
            out[server] = Surface(session.server_info, (await session.list_tools()).tools)
    return out


@pytest.fixture(scope="session")
def tools_lists(surfaces: dict[str, Surface]) -> dict[str, list[Tool]]:
    """The live tools/list of each server, in server order."""
    return {server: surface.tools for server, surface in surfaces.items()}


@pytest.fixture(scope="session")
async def scratch_stdio(tmp_path_factory: pytest.TempPathFactory
                        ) -> AsyncIterator[Callable[[str], Awaitable[ClientSession]]]:
    """`await scratch_stdio("memory")`: one stdio session per server for the whole run, started on
    first use, on a data root of its own. Only for calls that leave nothing another test could see
    (refused calls, reads of what a fresh server publishes); a test that writes, or counts what is
    stored, starts its own server."""
    home = tmp_path_factory.mktemp("scratch")
    async with contextlib.AsyncExitStack() as stack:
        opened: dict[str, ClientSession] = {}

        async def session(server: str) -> ClientSession:
            if server not in opened:
                opened[server] = await stack.enter_async_context(held_stdio_session(server, server_env(home / server)))
            return opened[server]

        yield session


# Replays of recorded conversations (test_agent_split, test_agent_participants): what the fake STT
# hears, and a fake LLM that answers "Sure." and records every request. Imported here, not at the
# top: a memory-only install runs this conftest without the agent's audio stack.
@pytest.fixture(scope="module")
def script() -> Any:
    from tests.conversation import Script

    return Script()


@pytest.fixture(scope="module")
def fake(script: Any) -> Iterator[Any]:
    from tests.fakes.openai_server import FakeOpenAI, Reply

    with FakeOpenAI(lambda body: Reply(content="Sure."), transcriber=script.transcribe) as server:
        yield server
