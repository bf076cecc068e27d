"""State changes of a stored job: the generic compare-and-swap transition, and cancel."""

import logging

from contracts import ErrorCode, JobStatus, JobView
from contracts.errors import ConflictDetails, JobDetails
from edge_worker.domain import jobs
from edge_worker.domain.jobs import Job
from edge_worker.domain.problems import Problem
from edge_worker.ports import JobChanges
from edge_worker.usecases.context import EdgeContext
from edge_worker.usecases.views import JobViews

log = logging.getLogger("edge_worker.jobs")

CAS_ATTEMPTS = 8


class TransitionRefused(Problem):
    """A transition that did not apply: the job is gone, its state does not allow the
    change, or other writers kept winning the compare-and-swap. Clients are told why; the
    maintenance sweep skips the job."""


class JobTransitions:
    def __init__(self, context: EdgeContext, views: JobViews, changes: JobChanges) -> None:
        self.context = context
        self.views = views
        self.changes = changes

    async def transition(self, job_id: str, change: jobs.Transition) -> Job:
        """Apply `change` as a compare-and-swap, re-reading on a lost race; every job change
        is written here, so `changes` (webhook events) hears of each one once."""
        store = self.context.store
        for _ in range(CAS_ATTEMPTS):
            job = await store.get(job_id)
            if job is None:
                raise TransitionRefused(
                    ErrorCode.JOB_NOT_FOUND, f"no job {job_id}", JobDetails(job_id=job_id)
                )
            try:
                updated = change(job)
            except jobs.JobStateError as exc:
                raise TransitionRefused(
                    ErrorCode.CONFLICT, str(exc), ConflictDetails(status=job.status.value)
                ) from None
            if await store.replace(updated, expected_version=job.version):
                await self.changes.job_changed(job, updated)
                return updated
        raise TransitionRefused(ErrorCode.CONFLICT, "job is being changed concurrently; retry")

    async def cancel(self, owner: str, job_id: str) -> JobView:
        job = await self.views.get_owned(owner, job_id)
        if job.status is not JobStatus.CANCELLED:
            now = self.context.clock.now()
            job = await self.transition(job_id, lambda j: jobs.cancel(j, now=now))
            log.info(
                "job cancelled", extra={"job_id": job_id, "was_claimed": bool(job.claim_token)}
            )
        await self.cancel_children(job.id)
        return await self.views.view(job)

    async def cancel_children(self, parent_id: str) -> None:
        """Every unfinished child of a split job: their agents are told at their next
        heartbeat. Also run again by a repeated cancel, so a child created in a race with
        the first one is caught."""
        now = self.context.clock.now()
        for child in await self.context.store.children(parent_id):
            if child.status.is_terminal:
                continue
            try:
                await self.transition(child.id, lambda j: jobs.cancel(j, now=now))
            except TransitionRefused:
                continue  # it finished meanwhile
