"""The maintenance sweep: run by the Worker's cron trigger and by the local runtime's timer.

Idempotent and safe to run twice at once: every change is a compare-and-swap transition,
so two sweeps (or a sweep racing an agent) cannot both apply one; the loser skips it.
"""

import logging
from dataclasses import asdict, dataclass
from datetime import timedelta

from contracts import JobStatus, QueueMessage
from edge_worker import jobs
from edge_worker.errors import ApiError
from edge_worker.job_rows import SweepKind
from edge_worker.services import JobService, video_prefix

log = logging.getLogger("edge_worker.maintenance")

BATCH = 100


@dataclass
class SweepReport:
    requeued_lost: int = 0
    failed_lost: int = 0
    expired: int = 0
    inputs_deleted: int = 0
    reenqueued_stranded: int = 0
    idempotency_keys_purged: int = 0
    skipped: int = 0


async def run_maintenance(service: JobService) -> SweepReport:
    """One pass over each kind of job that needs attention; logs the counts."""
    s = service.s
    settings = s.settings
    store = s.store
    now = s.clock.now()
    report = SweepReport()

    async def apply(job: jobs.Job, change: jobs.Transition) -> jobs.Job | None:
        try:
            return await service.transition(job.id, change)
        except ApiError:
            report.skipped += 1
            return None

    heartbeat_before = now - timedelta(seconds=settings.heartbeat_timeout_seconds)
    for job in await store.find_for_sweep(SweepKind.LOST, heartbeat_before, BATCH):
        updated = await apply(
            job,
            lambda j: jobs.requeue_lost(
                j, heartbeat_before=heartbeat_before, max_attempts=settings.max_attempts, now=now
            ),
        )
        if updated is None:
            continue
        if updated.status is JobStatus.PENDING:
            await s.queue.send(QueueMessage(job_id=job.id, enqueued_at=now))
            report.requeued_lost += 1
        else:
            report.failed_lost += 1
        log.warning(
            "agent lost",
            extra={"job_id": job.id, "agent_id": job.agent_id, "status": updated.status.value},
        )

    for job in await store.find_for_sweep(SweepKind.EXPIRED, now, BATCH):
        await s.blobs.delete([*await s.blobs.list_keys(video_prefix(job.id)), *job.input_keys])
        if await apply(job, lambda j: jobs.expire(j, now=now)):
            report.expired += 1

    for job in await store.find_for_sweep(SweepKind.INPUTS_LEFT, now, BATCH):
        uploads = await s.blobs.list_keys(video_prefix(job.id))
        unpublished = [key for key in uploads if key != job.result_key]
        await s.blobs.delete([*job.input_keys, *unpublished])
        if await apply(job, lambda j: jobs.mark_inputs_deleted(j, now=now)):
            report.inputs_deleted += 1

    stranded_before = now - timedelta(seconds=settings.pending_requeue_seconds)
    for job in await store.find_for_sweep(SweepKind.STRANDED, stranded_before, BATCH):
        if await apply(job, lambda j: jobs.mark_enqueued(j, now=now)):
            await s.queue.send(QueueMessage(job_id=job.id, enqueued_at=now))
            report.reenqueued_stranded += 1

    report.idempotency_keys_purged = await store.purge_idempotency(now)
    if any(value for value in asdict(report).values()):
        log.info("maintenance sweep", extra=asdict(report))
    return report
