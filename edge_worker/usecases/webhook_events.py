"""Turning job changes into webhook events: `JobTransitions` tells `WebhookEvents` of every
change it writes, so each path that moves a job (agents, a client's cancel, the sweep) emits
through this one place. An event is stored with its body, then queued for delivery."""

import logging
import uuid
from datetime import datetime, timedelta

from contracts import JobStatus
from contracts.webhooks import WebhookEventType, WebhookMessage, WebhookPayload
from edge_worker.domain.jobs import Job
from edge_worker.domain.webhook_deliveries import WebhookEvent
from edge_worker.domain.webhook_events import event_for, progress_due, wanted
from edge_worker.usecases.context import EdgeContext
from edge_worker.usecases.views import JobViews

log = logging.getLogger("edge_worker.webhooks")


def new_webhook_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


class WebhookEvents:
    def __init__(self, context: EdgeContext, views: JobViews) -> None:
        self.context = context
        self.views = views

    async def job_changed(self, before: Job, after: Job) -> None:
        """Record and queue the event this change makes, if the job's webhook wants it.

        The job's change is already written: a failure here is logged, not raised, so the
        caller (an agent, a client, the sweep) is not told the change failed when it did not.
        """
        if after.parent_id is not None:
            await self._segment_changed(before, after)
            return
        event_type = event_for(before, after)
        if event_type is None or not wanted(after, event_type):
            return
        await self._emit_logged(after, event_type, after.updated_at)

    async def _segment_changed(self, before: Job, child: Job) -> None:
        """A split job's progress lives in its segments and stitch (the parent's view is
        computed from them), so their changes are the parent's `job.progress` events; the
        parent's own transitions (completed, failed, cancelled) emit as any job's do."""
        assert child.parent_id is not None
        if child.progress <= before.progress and child.status is not JobStatus.COMPLETED:
            return  # a claim, a requeue or a cancel moves no progress
        parent = await self.context.store.get(child.parent_id)
        if parent is None or parent.status.is_terminal:
            return
        if wanted(parent, WebhookEventType.PROGRESS):
            await self._emit_logged(parent, WebhookEventType.PROGRESS, child.updated_at)

    async def _emit_logged(self, job: Job, event_type: WebhookEventType, at: datetime) -> None:
        try:
            await self._emit(job, event_type, at)
        except Exception:
            log.exception(
                "webhook event not recorded", extra={"job_id": job.id, "type": event_type.value}
            )

    async def _emit(self, job: Job, event_type: WebhookEventType, at: datetime) -> None:
        store = self.context.webhooks
        if event_type is WebhookEventType.PROGRESS:
            interval = timedelta(seconds=self.context.settings.webhook_progress_interval_seconds)
            if not progress_due(await store.last_event_at(job.id, event_type), at, interval):
                return
        assert job.webhook_url is not None, "wanted() checked it"
        payload = WebhookPayload(type=event_type, timestamp=at, data=await self.views.view(job))
        event = WebhookEvent(
            id=new_webhook_id(),
            job_id=job.id,
            owner=job.owner,
            type=event_type,
            url=job.webhook_url,
            payload=payload.model_dump_json(),
            created_at=at,
        )
        await store.insert_event(event)
        await self.context.webhook_queue.send(WebhookMessage(webhook_id=event.id))
        log.info("webhook event", extra={"job_id": job.id, "webhook_id": event.id})
