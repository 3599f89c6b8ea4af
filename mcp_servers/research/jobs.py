"""Research jobs that outlive the tool call: start → status → result, or cancel.

Hosts cut tool calls after ~60 s; a job runs in the server process whatever happens to the
call (or the HTTP session) that started it, and any later call by the same caller can poll it.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from mcp_servers.core import audit
from mcp_servers.core.errors import NotFound, UserError
from mcp_servers.core.params import Progress

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
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def status(self) -> JobStatus:
        end = self.finished or time.time()
        return JobStatus(job_id=self.id, state=self.state, stage=self.stage, progress=self.progress,
                         total=self.total, message=self.message(), question=self.question,
                         elapsed_s=round(end - self.started, 3))

    def message(self) -> str:
        if self.state == "running":
            return f"Running ({self.stage}); poll research_status or call research_result with wait_s."
        if self.state == "done":
            return "Done; research_result returns the result."
        if self.state == "cancelled":
            return "Cancelled."
        return f"Failed: {self.error}"


class Jobs:
    """In-process registry. A caller scoped to one user sees only that user's jobs."""

    def __init__(self, ttl_s: float, max_jobs: int):
        self.ttl_s = ttl_s
        self.max_jobs = max_jobs
        self._jobs: dict[str, Job] = {}

    def __len__(self) -> int:
        return len(self._jobs)

    def start(self, question: str, owner: str | None, user_id: str | None,
              work: Callable[[Progress], Awaitable[ResearchResult]]) -> Job:
        self._prune()
        if len(self._jobs) >= self.max_jobs:
            raise UserError(f"{self.max_jobs} research jobs are already running; wait for one or cancel one.")
        job = Job(id=uuid.uuid4().hex, owner=owner, user_id=user_id, question=question[:200])

        async def progress(done: float, total: float, message: str) -> None:
            job.progress, job.total, job.stage = done, total, message

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
                job.done.set()

        job.task = asyncio.create_task(run(), name=f"research-{job.id}")
        self._jobs[job.id] = job
        return job

    def get(self, job_id: str, owner: str | None, full_access: bool) -> Job:
        job = self._jobs.get(job_id.strip())
        if job is None or (not full_access and job.owner != owner):
            if job is not None:
                audit.concerns(job.owner)  # another user's job: the attempt goes on their trail
            raise NotFound(f"No research job {job_id!r} (jobs are kept {self.ttl_s:g} s after they finish, "
                           "in the server process that started them).")
        return job

    async def wait(self, job: Job, wait_s: float) -> None:
        if wait_s > 0 and job.state == "running":
            try:
                await asyncio.wait_for(job.done.wait(), wait_s)
            except TimeoutError:
                pass

    def result(self, job: Job) -> JobResult:
        return JobResult(job_id=job.id, state=job.state, result=job.result, error=job.error, message=job.message())

    async def cancel(self, job: Job) -> None:
        if job.task is not None and not job.task.done():
            job.task.cancel()
            await asyncio.wait({job.task}, timeout=5)

    async def forget(self, user_id: str) -> int:
        """Cancel and drop every job a user started or that read their documents; how many."""
        theirs = [j for j in self._jobs.values() if user_id in (j.owner, j.user_id)]
        for job in theirs:
            await self.cancel(job)
            self._jobs.pop(job.id, None)
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
