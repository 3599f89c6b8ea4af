"""Event ids for SSE streams, so every stream opens with a priming event and a `retry` (SEP-1699).

The SDK primes a 2025-11-25 stream (an event with an id and `retry`, no data) only when it has an
event store. Ours numbers events and keeps none of them: the SDK names each stream by its request's
JSON-RPC id, which two sessions share (both send id 1), so a store that replayed by stream could
hand one session's answers to another. A client that reconnects with `Last-Event-ID` is therefore
told nothing is left to replay (the stream ends) and sends its request again; our servers never
close a stream before its answer, so that happens only when the network drops it.
"""

from __future__ import annotations

import uuid

from mcp.server.streamable_http import EventCallback, EventId, EventStore, StreamId
from mcp.types import JSONRPCMessage

RETRY_MS = 1000  # how long a client waits before it reconnects a dropped stream


class EventIds(EventStore):
    """Unguessable event ids; nothing stored, nothing replayed."""

    async def store_event(self, stream_id: StreamId, message: JSONRPCMessage | None) -> EventId:
        return uuid.uuid4().hex

    async def replay_events_after(self, last_event_id: EventId, send_callback: EventCallback) -> StreamId | None:
        return None
