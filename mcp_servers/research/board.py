"""Research jobs in the Qdrant deployment (`QDRANT_URL`), so a job started through one replica is
polled, waited on, cancelled and read through any other, and outlives the process that ran it.

One point per job (no vector). The replica that runs a job writes its progress and result there and
beats every `BEAT_S`; it also watches the point: a cancel asked on another replica, or the point gone
(the user forgotten), stops the job. A running job whose beat is older than `STALE_S` ran on a replica
that died: it reads as failed.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from mcp_servers.core.store import CollectionSpec, Hit, Item, VectorStore, Where

from .models import JobState, ResearchResult

JOBS_SPEC = CollectionSpec("jobs", dim=1, sparse=False, tenant_fields=("owner", "user_id"),
                           keyword_fields=("state", "cancel"), float_fields=("finished", "beat"))
BEAT_S = 1.0
STALE_S = 30.0
NOBODY = ""  # the owner (None) as stored


def point_id(job_id: str) -> str:
    return str(uuid.UUID(hex=job_id))


class JobBoard:
    """Job records in the store; every call blocks (run it off the loop)."""

    def __init__(self, store: VectorStore):
        self.store = store

    def put(self, job_id: str, fields: dict[str, Any]) -> None:
        self.store.upsert([Item(point_id(job_id), fields)])

    def update(self, job_id: str, fields: dict[str, Any]) -> bool:
        """Merge fields into a job's record only while it exists (a forgotten job stays forgotten)."""
        pid = point_id(job_id)
        if not self.store.retrieve([pid]):
            return False
        self.store.set_payload([pid], fields)
        return True

    def get(self, job_id: str) -> dict[str, Any] | None:
        try:
            hits = self.store.retrieve([point_id(job_id)])
        except ValueError:  # not a job id at all
            return None
        return _live(hits[0]) if hits else None

    def running(self) -> int:
        return self.store.count(Where(equals={"state": "running"}, ranges={"beat": (time.time() - STALE_S, None)}))

    def forget(self, user_id: str) -> int:
        n = 0
        for key in ("owner", "user_id"):
            where = Where(equals={key: user_id})
            n += self.store.count(where)
            self.store.delete_where(where)
        return n

    def prune(self, ttl_s: float) -> None:
        self.store.delete_where(Where(not_equals={"state": "running"}, ranges={"finished": (None, time.time() - ttl_s)}))


def _live(hit: Hit) -> dict[str, Any]:
    """A record as readers should see it: a running job nobody beats for has failed."""
    p = dict(hit.payload)
    if p.get("state") == "running" and time.time() - float(p.get("beat", 0)) > STALE_S:
        p.update(state="failed", stage="failed", error="the server process running this job stopped")
    return p


def record_state(p: dict[str, Any]) -> tuple[JobState, ResearchResult | None]:
    result = ResearchResult.model_validate(p["result"]) if p.get("result") else None
    return p["state"], result
