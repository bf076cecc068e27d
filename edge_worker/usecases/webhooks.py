"""The client's side of webhooks: the key's signing secret and its rotation, a job's
delivery log, and redelivery of its last event (docs/API.md#webhooks)."""

from datetime import timedelta

from contracts import ErrorCode
from contracts.errors import ConflictDetails
from contracts.webhooks import (
    DeliveryAttempt,
    WebhookDeliveries,
    WebhookMessage,
    WebhookSecret,
)
from contracts.webhooks import WebhookEventView as EventView
from edge_worker.domain.problems import Problem
from edge_worker.domain.webhook_deliveries import (
    Attempt,
    SigningSecrets,
    WebhookEvent,
    redelivered,
)
from edge_worker.domain.webhook_signing import new_secret
from edge_worker.usecases.context import EdgeContext
from edge_worker.usecases.transitions import CAS_ATTEMPTS
from edge_worker.usecases.views import JobViews


class Webhooks:
    def __init__(self, context: EdgeContext, views: JobViews) -> None:
        self.context = context
        self.views = views

    async def signing_secrets(self, owner: str) -> SigningSecrets:
        """The key's secrets, made on first use (by the client or by a first delivery)."""
        store = self.context.webhooks
        found = await store.get_secrets(owner)
        if found is not None:
            return found
        fresh = SigningSecrets(
            owner=owner, secret=new_secret(), created_at=self.context.clock.now()
        )
        if await store.insert_secrets(fresh):
            return fresh
        raced = await store.get_secrets(owner)
        assert raced is not None, "a concurrent first use inserted it"
        return raced

    async def secret(self, owner: str) -> WebhookSecret:
        return WebhookSecret(secret=(await self.signing_secrets(owner)).secret)

    async def rotate(self, owner: str) -> WebhookSecret:
        """A new secret; the old one still signs for the grace window, beside the new one."""
        grace = timedelta(seconds=self.context.settings.webhook_secret_grace_seconds)
        for _ in range(CAS_ATTEMPTS):
            current = await self.signing_secrets(owner)
            rotated = current.rotated(new_secret(), self.context.clock.now(), grace)
            if await self.context.webhooks.replace_secrets(rotated, current.secret):
                return WebhookSecret(secret=rotated.secret)
        raise Problem(ErrorCode.CONFLICT, "the secret is being rotated concurrently; retry")

    async def deliveries(self, owner: str, job_id: str) -> WebhookDeliveries:
        job = await self.views.get_owned(owner, job_id)
        store = self.context.webhooks
        attempts: dict[str, list[Attempt]] = {}
        for attempt in await store.job_attempts(job_id):
            attempts.setdefault(attempt.webhook_id, []).append(attempt)
        return WebhookDeliveries(
            job_id=job.id,
            webhook_url=job.webhook_url,
            webhook_events=sorted(job.webhook_events),
            events=[
                _event_view(event, attempts.get(event.id, []))
                for event in await store.job_events(job_id)
            ],
        )

    async def redeliver(self, owner: str, job_id: str) -> EventView:
        """The job's last event again: the same `webhook-id` and body, as a new series of
        attempts (so a receiver that deduplicates by id sees it once)."""
        job = await self.views.get_owned(owner, job_id)
        if job.webhook_url is None:
            raise Problem(
                ErrorCode.CONFLICT,
                f"job {job_id} was created without a webhook_url",
                ConflictDetails(field="webhook_url"),
            )
        store = self.context.webhooks
        for _ in range(CAS_ATTEMPTS):
            events = await store.job_events(job_id)
            if not events:
                raise Problem(
                    ErrorCode.CONFLICT,
                    f"job {job_id} has had no webhook event yet",
                    ConflictDetails(status=job.status.value),
                )
            last = events[-1]
            again = redelivered(last)
            if await store.save_event(again, expected=last):
                message = WebhookMessage(webhook_id=again.id, series=again.series)
                await self.context.webhook_queue.send(message)
                attempts = [a for a in await store.job_attempts(job_id) if a.webhook_id == last.id]
                return _event_view(again, attempts)
        raise Problem(ErrorCode.CONFLICT, "the event is being delivered right now; retry")


def _event_view(event: WebhookEvent, attempts: list[Attempt]) -> EventView:
    return EventView(
        webhook_id=event.id,
        type=event.type,
        created_at=event.created_at,
        url=event.url,
        state=event.state,
        attempts=[
            DeliveryAttempt(
                attempt=a.attempt,
                attempted_at=a.attempted_at,
                status_code=a.status_code,
                latency_ms=a.latency_ms,
                error=a.error,
                next_retry_at=a.next_retry_at,
            )
            for a in attempts
        ],
    )
