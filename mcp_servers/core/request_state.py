"""The key that seals a 2026-07-28 call's `requestState` (the question of an elicited destructive call),
shared by every replica of a server, so the retry that carries the answer may land on any of them.

The MCP SDK seals `requestState` with AES-GCM under a key of ours and binds it to the call, the server
and, here, the caller's principal. Its default key lives in one process only: a replica that did not
ask the question refused the answer. The key is `ALPHAAVATAR_REQUEST_STATE_KEY` when set, else derived
from the owner token (every replica holds the same one), else this process's own (one process, or no
shared secret to derive it from). `ALPHAAVATAR_REQUEST_STATE_PREVIOUS_KEY` opens states sealed with
another key, so replicas roll a new key without refusing the questions in flight.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Any

from mcp.server.request_state import RequestStateSecurity

from . import auth
from .settings import Settings

_LABEL = b"alphaavatar/request-state/v1"


def state_key(settings: Settings) -> bytes:
    """32 bytes or more of key: the configured one, the owner token's derivation, or a fresh one."""
    if settings.request_state_key is not None:
        return settings.request_state_key.get_secret_value().encode()
    if settings.token is not None:  # one-way: the key tells nothing of the token
        return hmac.new(settings.token.get_secret_value().encode(), _LABEL, hashlib.sha256).digest()
    return os.urandom(32)


def _principal(ctx: Any) -> str:
    """A state answered only by the principal it was asked of (the owner acting for a user included)."""
    return auth.caller(ctx).label()


def security(settings: Settings) -> RequestStateSecurity:
    """The SDK's ring: the first key seals, every key opens (a rotation keeps the questions in flight)."""
    previous = settings.request_state_previous_key
    keys = [state_key(settings), *([previous.get_secret_value().encode()] if previous is not None else [])]
    return RequestStateSecurity(keys=keys, bind_principal=_principal)
