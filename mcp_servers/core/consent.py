"""A destructive tool runs only after the person says yes: the server asks through MCP elicitation.

Every tool annotated `destructiveHint` is confirmed this way when the client declared form
elicitation: the question says what will happen and for whom, the client asks its person (a
host's dialog, the console's, the voice agent speaking it to the speaker) and only an accepted
`confirm: true` runs the tool; a decline, a cancel or a missing answer does nothing. A client that
declares no elicitation gets the tool as before, behind its host's own tool approval.

Both transports: a 2025-11-25 session gets an `elicitation/create` request in the middle of the
call; a 2026-07-28 request gets an `InputRequiredResult` and is answered on its retry. The
question's `_meta` names the tool and, for a delegated call, the user it acts for, and echoes the
call's `CALL` mark, so a client can route the question to the person the call is for.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from mcp.server.mcpserver import Context
from mcp.shared.message import ServerMessageMetadata
from mcp_types import ElicitRequest, ElicitRequestFormParams, ElicitResult, InputRequiredResult, ToolAnnotations
from mcp_types.version import is_version_at_least

from .auth import ACT_AS, Principal

log = logging.getLogger(__name__)
KEY = "alphaavatar.confirm"  # the input request's key on 2026-07-28
TOOL_META = "alphaavatar/tool"  # elicitation `_meta`: the tool waiting for the answer
CALL = "alphaavatar/call"  # a client's mark on its call, echoed in the question's `_meta`
_INPUT_REQUIRED_VERSION = "2026-07-28"
ARGUMENT_CHARS = 400


SCHEMA: dict[str, Any] = {"type": "object", "properties": {"confirm": {
    "type": "boolean", "title": "Go ahead?", "description": "true: do it. false: nothing happens."}},
    "required": ["confirm"]}


def destructive(annotations: ToolAnnotations | None) -> bool:
    return bool(annotations is not None and annotations.destructive_hint)


def can_ask(context: Context[Any, Any]) -> bool:
    """The client declared form elicitation (a bare `elicitation: {}` counts, as the spec says)."""
    capabilities = context.client_capabilities
    elicitation = capabilities.elicitation if capabilities is not None else None
    return elicitation is not None and (elicitation.form is not None or elicitation.url is None)


def question(tool: str, description: str | None, arguments: dict[str, Any], principal: Principal) -> str:
    """What the person is asked: the tool, what it does, with which arguments, for whom."""
    does = (description or tool).strip().split("\n")[0].rstrip(".")
    args = json.dumps(arguments, ensure_ascii=False, sort_keys=True, default=str)
    if len(args) > ARGUMENT_CHARS:
        args = args[:ARGUMENT_CHARS] + "…"
    whom = f" on behalf of user '{principal.user_id}'" if principal.delegated else ""
    return (f"Confirm {tool}{whom}: {does}, with {args}. This cannot be undone. "
            "Answer yes to go ahead; anything else does nothing.")


def _request(message: str, tool: str, principal: Principal, call_meta: Any) -> ElicitRequest:
    meta: dict[str, Any] = {TOOL_META: tool}
    if principal.delegated:
        meta[ACT_AS] = principal.user_id
    if isinstance(call_meta, dict) and isinstance(mark := call_meta.get(CALL), str):
        meta[CALL] = mark[:100]
    params = ElicitRequestFormParams.model_validate({"message": message, "requestedSchema": SCHEMA, "_meta": meta})
    return ElicitRequest(params=params)


def _said_yes(answer: ElicitResult | None) -> bool:
    return bool(answer is not None and answer.action == "accept" and (answer.content or {}).get("confirm") is True)


def _digest(message: str) -> str:
    return hashlib.sha256(message.encode()).hexdigest()[:32]


async def ask(context: Context[Any, Any], message: str, tool: str, principal: Principal) -> bool | InputRequiredResult:
    """True on the person's yes; on 2026-07-28 the first round is the question to return."""
    request = _request(message, tool, principal, context.request_context.meta)
    version = context.protocol_version
    if version is not None and is_version_at_least(version, _INPUT_REQUIRED_VERSION):
        answer = (context.input_responses or {}).get(KEY)
        if answer is None or context.request_state != _digest(message):  # unasked, or asked of other arguments
            return InputRequiredResult(input_requests={KEY: request}, request_state=_digest(message))
        return _said_yes(answer if isinstance(answer, ElicitResult) else None)
    session = context.request_context.session
    if not session.can_send_request:  # a connection that cannot carry the question: its host approves, or no
        return not principal.delegated
    try:
        answer = await session.send_request(
            request, ElicitResult, metadata=ServerMessageMetadata(related_request_id=context.request_id))
    except Exception as exc:  # the client could not answer (gone, timed out, refused): no answer is no
        log.info("no answer to the confirmation of %s: %s", tool, exc)
        return False
    return _said_yes(answer)
