"""A webhook event's delivery as plain data: its state after each attempt, a redelivery, and
the key's signing secrets through a rotation. Storage and HTTP are the use case's."""

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from contracts.webhooks import DeliveryState, WebhookEventType
from edge_worker.domain.webhook_retries import Outcome, RetryPolicy, outcome


@dataclass(frozen=True)
class WebhookEvent:
    """One event of one job, sent with the same `webhook-id` (`id`) on every attempt.
    `series` counts redeliveries; `series_attempts` and `series_started_at` belong to the
    current series, which the retry policy judges; `attempts` counts them all."""

    id: str
    job_id: str
    owner: str
    type: WebhookEventType
    url: str
    payload: str
    created_at: datetime
    state: DeliveryState = DeliveryState.PENDING
    series: int = 0
    series_attempts: int = 0
    series_started_at: datetime | None = None
    attempts: int = 0


@dataclass(frozen=True)
class Attempt:
    webhook_id: str
    attempt: int
    attempted_at: datetime
    status_code: int | None
    latency_ms: int
    error: str | None
    next_retry_at: datetime | None


@dataclass(frozen=True)
class SigningSecrets:
    """A key's current secret, and the one it replaced while the grace window lasts."""

    owner: str
    secret: str
    created_at: datetime
    previous_secret: str | None = None
    previous_until: datetime | None = None
    rotated_at: datetime | None = None

    def signing(self, now: datetime) -> list[str]:
        """The secrets a request is signed with now: the current one first."""
        previous = self.previous_secret
        if previous is not None and self.previous_until is not None and now < self.previous_until:
            return [self.secret, previous]
        return [self.secret]

    def rotated(self, new_secret: str, now: datetime, grace: timedelta) -> "SigningSecrets":
        return replace(
            self,
            secret=new_secret,
            previous_secret=self.secret,
            previous_until=now + grace,
            rotated_at=now,
        )


@dataclass(frozen=True)
class AttemptResult:
    status_code: int | None
    error: str | None
    latency_ms: int


def after_attempt(
    event: WebhookEvent, result: AttemptResult, now: datetime, policy: RetryPolicy
) -> tuple[WebhookEvent, Attempt, float | None]:
    """The event once this attempt is recorded, the attempt's record, and the wait before
    the next attempt (None: no other attempt)."""
    started = event.series_started_at or now
    tried = event.series_attempts + 1
    verdict = outcome(result.status_code)
    delay = policy.next_delay(tried, started, now) if verdict is Outcome.RETRY else None
    error = result.error
    if verdict is Outcome.GONE:
        error = "the receiver answered 410 Gone: no more attempts"
    elif verdict is Outcome.RETRY and error is None:
        error = f"the receiver answered {result.status_code}"
    if verdict is Outcome.DELIVERED:
        state = DeliveryState.DELIVERED
    else:
        state = DeliveryState.FAILED if delay is None else DeliveryState.RETRYING
    updated = replace(
        event,
        state=state,
        series_attempts=tried,
        series_started_at=started,
        attempts=event.attempts + 1,
    )
    attempt = Attempt(
        webhook_id=event.id,
        attempt=updated.attempts,
        attempted_at=now,
        status_code=result.status_code,
        latency_ms=result.latency_ms,
        error=error,
        next_retry_at=None if delay is None else now + timedelta(seconds=delay),
    )
    return updated, attempt, delay


def redelivered(event: WebhookEvent) -> WebhookEvent:
    """The same event (same id, same body) as a new series of attempts."""
    return replace(
        event,
        state=DeliveryState.PENDING,
        series=event.series + 1,
        series_attempts=0,
        series_started_at=None,
    )
