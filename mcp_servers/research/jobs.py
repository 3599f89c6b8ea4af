"""Research jobs that outlive the tool call: start → status → result, or cancel.

Hosts cut tool calls after ~60 s; a job runs in the server process whatever happens to the
call (or the HTTP session) that started it, and any later call by the same caller can poll it.
With a `JobBoard` (`QDRANT_URL` set) every job is also a record in the Qdrant deployment, and any
replica answers for it (see `board`).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from mcp_servers.core import audit
from mcp_servers.core.errors import NotFound, UserError
from mcp_servers.core.params import Progress
from mcp_servers.core.store.aio import off_loop

from .board import BEAT_S, JobBoard
from .models import JobResult, JobState, JobStatus, ResearchResult

log = logging.getLogger(__name__)


@dataclass
class Job:
    id: str
    owner: str | None  # the user whose token started it (None: the owner)
    user_id: str | None  # the user whose documents it reads
    question: str
    started: float = field(default_factory=time.time)
    finished: float | None = None
    state: JobState = "running"
    stage: str = "queued"
    progress: float = 0.0
    total: float = 1.0
    result: ResearchResult | None = None
    error: str | None = None
    task: asyncio.Task[None] | None = None
    watcher: asyncio.Task[None] | None = None  # with a board: beats and takes a cancel from another replica
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def status(self) -> JobStatus:
        end = self.finished or time.time()
        return JobStatus(job_id=self.id, state=self.state, stage=self.stage, progress=self.progress,
                         total=self.total, message=self.message(), question=self.question,
                         elapsed_s=round(end - self.started, 3))

    def record(self) -> dict[str, Any]:
        """The fields a JobBoard keeps (all but who may see it, written once at the start)."""
        return {"started": self.started, "finished": self.finished or 0.0, "state": self.state, "stage": self.stage,
                "progress": self.progress, "total": self.total, "error": self.error, "beat": time.time(),
                "result": self.result.model_dump(mode="json") if self.result else None}

    @classmethod
    def of_record(cls, job_id: str, p: dict[str, Any]) -> Job:
        """A job another replica runs (or ran), as its record shows it now."""
        return cls(id=job_id, owner=p["owner"] or None, user_id=p["user_id"] or None, question=p["question"],
                   started=p["started"], finished=p["finished"] or None, state=p["state"], stage=p["stage"],
                   progress=p["progress"], total=p["total"], error=p.get("error"),
                   result=ResearchResult.model_validate(p["result"]) if p.get("result") else None)

    def message(self) -> str:
        if self.state == "running":
            return f"Running ({self.stage}); poll research_status or call research_result with wait_s."
        if self.state == "done":
            return "Done; research_result returns the result."
        if self.state == "cancelled":
            return "Cancelled."
        return f"Failed: {self.error}"


class Jobs:
    """The jobs this process runs, and with a board every replica's. A caller scoped to one user sees
    only that user's jobs."""

    def __init__(self, ttl_s: float, max_jobs: int, board: JobBoard | None = None):
        self.ttl_s = ttl_s
        self.max_jobs = max_jobs
        self.board = board
        self._jobs: dict[str, Job] = {}

    def __len__(self) -> int:
        return len(self._jobs)

    async def start(self, question: str, owner: str | None, user_id: str | None,
                    work: Callable[[Progress], Awaitable[ResearchResult]]) -> Job:
        self._prune()
        if self.board is not None:
            await off_loop(self.board.prune, self.ttl_s)
        running = await off_loop(self.board.running) if self.board is not None else len(self._jobs)
        if running >= self.max_jobs:
            raise UserError(f"{self.max_jobs} research jobs are already running; wait for one or cancel one.")
        job = Job(id=uuid.uuid4().hex, owner=owner, user_id=user_id, question=question[:200])
        if self.board is not None:
            await off_loop(self.board.put, job.id, {**job.record(), "owner": owner or "", "user_id": user_id or "",
                                                    "question": job.question, "cancel": "no"})

        async def progress(done: float, total: float, message: str) -> None:
            job.progress, job.total, job.stage = done, total, message
            if self.board is not None:
                await off_loop(self.board.update, job.id, job.record())

        async def run() -> None:
            try:
                job.result = await work(progress)
                job.state, job.stage = "done", "done"
            except asyncio.CancelledError:
                job.state, job.stage = "cancelled", "cancelled"
            except Exception as exc:
                job.state, job.stage, job.error = "failed", "failed", str(exc) or exc.__class__.__name__
                if not isinstance(exc, UserError):  # a UserError is the caller's to read, not a bug
                    log.exception("research job failed")
            finally:
                job.finished = time.time()
                if self.board is not None:
                    await off_loop(self.board.update, job.id, job.record())
                job.done.set()

        job.task = asyncio.create_task(run(), name=f"research-{job.id}")
        self._jobs[job.id] = job
        if self.board is not None:
            job.watcher = asyncio.create_task(self._watch(job), name=f"research-watch-{job.id}")
        return job

    async def _watch(self, job: Job) -> None:
        """Beat for a running job, and stop it when its record asks (a cancel through another replica) or
        is gone (its user forgotten)."""
        assert self.board is not None and job.task is not None
        while not job.done.is_set():
            await asyncio.sleep(BEAT_S)
            if job.done.is_set():
                return
            try:
                record = await off_loop(self.board.get, job.id)
                if record is None or record.get("cancel") == "yes":
                    job.task.cancel()
                    return
                await off_loop(self.board.update, job.id, {"beat": time.time()})
            except Exception:  # the deployment did not answer this time: beat again next time
                log.warning("research job beat failed", exc_info=True)

    async def get(self, job_id: str, owner: str | None, full_access: bool) -> Job:
        job = self._jobs.get(job_id.strip())
        if job is None and self.board is not None and re.fullmatch(r"[0-9a-f]{32}", job_id.strip()):
            record = await off_loop(self.board.get, job_id.strip())
            job = Job.of_record(job_id.strip(), record) if record is not None else None
        if job is None or (not full_access and job.owner != owner):
            if job is not None:
                audit.concerns(job.owner)  # another user's job: the attempt goes on their trail
            where = "" if self.board is not None else ", in the server process that started them"
            raise NotFound(f"No research job {job_id!r} (jobs are kept {self.ttl_s:g} s after they finish{where}).")
        return job

    async def wait(self, job: Job, wait_s: float) -> Job:
        """The job once it has finished, or as it is after `wait_s`."""
        if wait_s > 0 and job.state == "running":
            if job.task is None:  # running on another replica: watch its record
                return await self._poll(job, time.monotonic() + wait_s)
            try:
                await asyncio.wait_for(job.done.wait(), wait_s)
            except TimeoutError:
                pass
        return job

    async def _poll(self, job: Job, deadline: float) -> Job:
        assert self.board is not None
        while True:
            record = await off_loop(self.board.get, job.id)
            if record is None:
                raise NotFound(f"No research job {job.id!r} (its user was forgotten).")
            job = Job.of_record(job.id, record)
            if job.state != "running" or time.monotonic() >= deadline:
                return job
            await asyncio.sleep(min(0.2, max(0.0, deadline - time.monotonic())))

    def result(self, job: Job) -> JobResult:
        return JobResult(job_id=job.id, state=job.state, result=job.result, error=job.error, message=job.message())

    async def cancel(self, job: Job) -> Job:
        """The job once stopped (through its record when another replica runs it)."""
        if job.task is not None:
            if not job.task.done():
                job.task.cancel()
                await asyncio.wait({job.task}, timeout=5)
            return job
        if self.board is not None and job.state == "running":
            await off_loop(self.board.update, job.id, {"cancel": "yes"})
            return await self._poll(job, time.monotonic() + 5 + BEAT_S)
        return job

    async def forget(self, user_id: str) -> int:
        """Cancel and drop every job a user started or that read their documents; how many. With a board,
        their records go too, which stops their jobs on every other replica."""
        theirs = [j for j in self._jobs.values() if user_id in (j.owner, j.user_id)]
        for job in theirs:
            await self.cancel(job)
            self._jobs.pop(job.id, None)
        if self.board is not None:
            return await off_loop(self.board.forget, user_id)
        return len(theirs)

    async def close(self) -> None:
        for job in list(self._jobs.values()):
            await self.cancel(job)

    def _prune(self) -> None:
        now = time.time()
        for job_id, job in list(self._jobs.items()):
            if job.finished is not None and now - job.finished > self.ttl_s:
                del self._jobs[job_id]
        finished = sorted((j for j in self._jobs.values() if j.finished is not None), key=lambda j: j.finished or 0)
        while len(self._jobs) >= self.max_jobs and finished:
            del self._jobs[finished.pop(0).id]
