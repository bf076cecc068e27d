"""One delivery attempt of one webhook event, for whichever queue carried its message (a
Cloudflare Queue's consumer in the Worker, the local runtime's SQLite queue): sign, POST,
record the attempt, and say when to try again."""

import logging
import time
from datetime import timedelta

from contracts.webhooks import DeliveryState, WebhookMessage
from edge_worker.domain import webhook_signing
from edge_worker.domain.webhook_deliveries import AttemptResult, after_attempt
from edge_worker.domain.webhook_retries import RetryPolicy
from edge_worker.domain.webhook_targets import host_of, private_host_reason
from edge_worker.ports import PostResult
from edge_worker.usecases.context import EdgeContext
from edge_worker.usecases.webhooks import Webhooks

log = logging.getLogger("edge_worker.webhooks")


class WebhookDelivery:
    def __init__(self, context: EdgeContext, webhooks: Webhooks) -> None:
        self.context = context
        self.webhooks = webhooks
        settings = context.settings
        self.policy = RetryPolicy(
            base_seconds=settings.webhook_retry_base_seconds,
            cap_seconds=settings.webhook_retry_cap_seconds,
            min_attempts=settings.webhook_min_attempts,
            min_span=timedelta(seconds=settings.webhook_retry_span_seconds),
        )

    @property
    def error_delay(self) -> float:
        """The wait before a message whose delivery raised (storage down) is tried again."""
        return self.policy.base_seconds

    async def deliver(self, message: WebhookMessage) -> float | None:
        """Make one attempt; the seconds until the message should come back, or None when
        it is done with (delivered, given up, or superseded by a redelivery)."""
        store = self.context.webhooks
        event = await store.get_event(message.webhook_id)
        if event is None or event.series != message.series:
            return None
        if event.state in (DeliveryState.DELIVERED, DeliveryState.FAILED):
            return None
        settings = self.context.settings
        body = event.payload.encode()
        refused = (
            None if settings.webhook_allow_private else private_host_reason(host_of(event.url))
        )
        if refused is None:
            now = self.context.clock.now()
            signing = (await self.webhooks.signing_secrets(event.owner)).signing(now)
            headers = webhook_signing.headers(signing, event.id, int(now.timestamp()), body)
            started = time.perf_counter()
            posted = await self.context.webhook_sender.post(
                event.url, body, headers, settings.webhook_timeout_seconds
            )
            latency_ms = round((time.perf_counter() - started) * 1000)
        else:
            posted, latency_ms = PostResult(None, f"refused: {refused}"), 0
        result = AttemptResult(posted.status_code, posted.error, latency_ms)
        updated, attempt, delay = after_attempt(
            event, result, self.context.clock.now(), self.policy
        )
        if not await store.save_event(updated, expected=event):
            return None  # another delivery of it, or a redelivery, got there first
        await store.insert_attempt(attempt)
        log.info(
            "webhook attempt",
            extra={
                "webhook_id": event.id,
                "job_id": event.job_id,
                "attempt": attempt.attempt,
                "status_code": attempt.status_code,
                "latency_ms": latency_ms,
                "state": updated.state.value,
            },
        )
        return delay
