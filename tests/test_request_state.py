"""The key that seals a 2026-07-28 call's requestState: the same on every replica that shares the
configured key or the owner token, its own in a process with neither, and refused when too short."""

from __future__ import annotations

import pytest
from mcp.server.request_state import InvalidRequestState
from pydantic import ValidationError

from mcp_servers.core.request_state import security
from mcp_servers.core.settings import Settings


def settings(**fields: object) -> Settings:
    return Settings(_env_file=None, **fields)  # type: ignore[call-arg]


def opens(sealer: Settings, opener: Settings) -> bool:
    token = security(sealer).codec.seal(b"asked")
    try:
        return security(opener).codec.unseal(token) == b"asked"
    except InvalidRequestState:
        return False


def test_replicas_sharing_the_owner_token_or_the_key_open_each_others_state() -> None:
    assert opens(settings(token="owner-token"), settings(token="owner-token"))
    assert not opens(settings(token="owner-token"), settings(token="another-token"))
    key = "k" * 32
    assert opens(settings(request_state_key=key), settings(request_state_key=key, token="owner-token"))
    assert not opens(settings(request_state_key=key), settings(token="owner-token")), "the configured key wins"
    assert not opens(settings(), settings()), "with no shared secret each process seals with its own key"


def test_a_key_rotates_without_refusing_the_questions_in_flight() -> None:
    old, new = "o" * 32, "n" * 32
    step1 = settings(request_state_key=old, request_state_previous_key=new)  # every replica first accepts new
    step2 = settings(request_state_key=new, request_state_previous_key=old)  # then seals with it
    step3 = settings(request_state_key=new)
    assert opens(settings(request_state_key=old), step1) and opens(step1, step2) and opens(step2, step1)
    assert opens(step2, step3) and not opens(step1, step3), "after the last step the old key opens nothing"


def test_a_short_key_is_refused_saying_how_to_make_one() -> None:
    with pytest.raises(ValidationError, match="at least 32 characters") as refused:
        settings(request_state_key="short-secret")
    assert "short-secret" not in str(refused.value), "the refusal does not echo the secret"
    with pytest.raises(ValidationError, match="at least 32 characters"):
        settings(request_state_key="k" * 32, request_state_previous_key="short-secret")
