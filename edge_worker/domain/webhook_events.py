"""Which webhook event a job's change is, if any: one rule for every path that changes a job
(agents, the client's cancel, the maintenance sweep), applied where transitions are written."""

from datetime import datetime, timedelta

from contracts import JobStatus
from contracts.webhooks import WebhookEventType
from edge_worker.domain.jobs import Job

_ENDINGS = {
    JobStatus.COMPLETED: WebhookEventType.COMPLETED,
    JobStatus.FAILED: WebhookEventType.FAILED,
    JobStatus.CANCELLED: WebhookEventType.CANCELLED,
}


def event_for(before: Job, after: Job) -> WebhookEventType | None:
    """The event `before` -> `after` makes: an ending, the start of an attempt (a claim), or
    progress within one; None for the rest (a retry back to the queue, expiry, bookkeeping)."""
    if after.status is not before.status:
        if after.status is JobStatus.PROCESSING:
            return WebhookEventType.PROCESSING
        return _ENDINGS.get(after.status)
    moved = (before.progress, before.stage, before.eta_seconds) != (
        after.progress,
        after.stage,
        after.eta_seconds,
    )
    if after.status is JobStatus.PROCESSING and moved:
        return WebhookEventType.PROGRESS
    return None


def wanted(job: Job, event: WebhookEventType) -> bool:
    return job.webhook_url is not None and event in job.webhook_events


def progress_due(last_sent: datetime | None, now: datetime, interval: timedelta) -> bool:
    """Progress events are throttled per job: at most one per `interval`."""
    return last_sent is None or now - last_sent >= interval
