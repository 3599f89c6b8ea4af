"""LiveKit sink: the hub's events on a room's data channel, topic `alphaavatar.character`.

The agent owns the room; it passes its `room.local_participant` (anything with LiveKit's
`publish_data(payload, *, reliable, topic)`). Expressions, state, speech timelines, motions and
interrupts go reliable (ordered, retransmitted); `param` (mouth frames) and `gaze` go lossy —
a late mouth frame is worse than a lost one. The sink is a hub subscriber, so it coalesces like
a renderer when the room is slow and starts with the current snapshot.
"""

from __future__ import annotations

import logging
from typing import Protocol

from .background import Background
from .hub import Hub
from .protocol import COALESCED_KINDS

log = logging.getLogger(__name__)
TOPIC = "alphaavatar.character"


class DataPublisher(Protocol):
    async def publish_data(self, payload: bytes | str, *, reliable: bool = True,
                           destination_identities: list[str] = ..., topic: str = "") -> None: ...


class LiveKitSink(Background):
    task_name = "livekit-sink"

    def __init__(self, hub: Hub, participant: DataPublisher, topic: str = TOPIC):
        self.hub = hub
        self.participant = participant
        self.topic = topic
        self.sent_reliable = 0
        self.sent_lossy = 0
        self.errors = 0

    async def run(self) -> None:
        sub = self.hub.subscribe("livekit", kind="livekit")
        try:
            while True:
                for slot in await sub.take():
                    lossy = getattr(slot.event, "kind", "") in COALESCED_KINDS
                    try:
                        await self.participant.publish_data(slot.line.encode(), reliable=not lossy, topic=self.topic)
                    except Exception as exc:  # the room's transport failing must not stop the hub
                        self.errors += 1
                        log.warning("LiveKit publish failed: %s", exc)
                        continue
                    if lossy:
                        self.sent_lossy += 1
                    else:
                        self.sent_reliable += 1
        finally:
            self.hub.unsubscribe(sub)
