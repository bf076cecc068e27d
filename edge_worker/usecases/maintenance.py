"""The maintenance sweep: run by the Worker's cron trigger and by the local runtime's timer.

Idempotent and safe to run twice at once: every change is a compare-and-swap transition,
so two sweeps (or a sweep racing an agent) cannot both apply one; the loser skips it.
"""

import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from contracts import JobStatus, QueueMessage
from edge_worker.domain import jobs, upload_tokens
from edge_worker.domain.storage_keys import video_prefix
from edge_worker.ports import SweepKind
from edge_worker.usecases.admission import Admission
from edge_worker.usecases.context import EdgeContext
from edge_worker.usecases.fanout import FanOut
from edge_worker.usecases.pool import PoolController
from edge_worker.usecases.transitions import JobTransitions, TransitionRefused

log = logging.getLogger("edge_worker.maintenance")

BATCH = 100
# A `/generate` that redeemed an upload id just before it expired has this long to insert
# its job before the sweep may take the upload for an unused one.
UPLOAD_GRACE = timedelta(minutes=5)


@dataclass
class SweepReport:
    requeued_lost: int = 0
    failed_lost: int = 0
    expired: int = 0
    inputs_deleted: int = 0
    reenqueued_stranded: int = 0
    idempotency_keys_purged: int = 0
    unused_uploads_deleted: int = 0
    admitted_held: int = 0
    split_checked: int = 0
    skipped: int = 0
    pool_acted: int = 0


class Maintenance:
    def __init__(
        self,
        context: EdgeContext,
        transitions: JobTransitions,
        admission: Admission,
        fanout: FanOut,
        pool: PoolController,
    ) -> None:
        self.context = context
        self.pool = pool
        self.transitions = transitions
        self.admission = admission
        self.fanout = fanout

    async def sweep(self) -> SweepReport:
        """One pass over each kind of job that needs attention; logs the counts."""
        context = self.context
        settings = context.settings
        store = context.store
        blobs = context.blobs
        now = context.clock.now()
        report = SweepReport()

        async def apply(job: jobs.Job, change: jobs.Transition) -> jobs.Job | None:
            try:
                return await self.transitions.transition(job.id, change)
            except TransitionRefused:
                report.skipped += 1
                return None

        heartbeat_before = now - timedelta(seconds=settings.heartbeat_timeout_seconds)
        for job in await store.find_for_sweep(SweepKind.LOST, heartbeat_before, BATCH):
            updated = await apply(
                job,
                lambda j: jobs.requeue_lost(
                    j,
                    heartbeat_before=heartbeat_before,
                    max_attempts=settings.max_attempts,
                    now=now,
                ),
            )
            if updated is None:
                continue
            if updated.status is JobStatus.PENDING:
                await context.queue.send(QueueMessage(job_id=job.id, enqueued_at=now))
                report.requeued_lost += 1
            else:
                report.failed_lost += 1
                if updated.parent_id is not None:
                    await self.fanout.advance(updated.parent_id)
            log.warning(
                "agent lost",
                extra={"job_id": job.id, "agent_id": job.agent_id, "status": updated.status.value},
            )

        for job in await store.find_for_sweep(SweepKind.EXPIRED, now, BATCH):
            await blobs.delete([*await blobs.list_keys(video_prefix(job.id)), *job.input_keys])
            if await apply(job, lambda j: jobs.expire(j, now=now)):
                report.expired += 1

        for job in await store.find_for_sweep(SweepKind.INPUTS_LEFT, now, BATCH):
            uploads = await blobs.list_keys(video_prefix(job.id))
            unpublished = [key for key in uploads if key != job.result_key]
            await blobs.delete([*job.input_keys, *unpublished])
            if await apply(job, lambda j: jobs.mark_inputs_deleted(j, now=now)):
                report.inputs_deleted += 1

        stranded_before = now - timedelta(seconds=settings.pending_requeue_seconds)
        for job in await store.find_for_sweep(SweepKind.STRANDED, stranded_before, BATCH):
            if await apply(job, lambda j: jobs.mark_enqueued(j, now=now)):
                await context.queue.send(QueueMessage(job_id=job.id, enqueued_at=now))
                report.reenqueued_stranded += 1

        # A split job moves on when its children report; this catches a step that an edge
        # crash interrupted (children not all created, a stitch not created or not published).
        for job in await store.find_for_sweep(SweepKind.SPLIT, heartbeat_before, BATCH):
            await self.fanout.advance(job.id)
            report.split_checked += 1

        report.idempotency_keys_purged = await store.purge_idempotency(now)
        report.unused_uploads_deleted = await self._delete_unused_uploads(now)
        report.admitted_held = await self.admission.top_up()
        # Last, so the backlog it sizes the pool for includes what this sweep re-enqueued.
        passed = await self.pool.run()
        report.pool_acted = int(passed is not None and passed.acted)
        if any(value for value in asdict(report).values()):
            log.info("maintenance sweep", extra=asdict(report))
        return report

    async def _delete_unused_uploads(self, now: datetime) -> int:
        """Uploads whose ticket expired and that no job reads: nothing can use them any
        more. (Those a job took are deleted with that job's inputs.)"""
        blobs = self.context.blobs
        cutoff = now - UPLOAD_GRACE
        expired = [
            key
            for key in await blobs.list_keys(upload_tokens.UPLOAD_PREFIX)
            if (expiry := upload_tokens.expiry_of(key)) is not None and expiry <= cutoff
        ]
        unused = sorted(set(expired) - await self.context.store.input_keys_in_use(expired))
        await blobs.delete(unused)
        return len(unused)
