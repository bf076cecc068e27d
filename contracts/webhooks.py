"""Webhooks on the wire: event types, the signed body, the delivery log and the queue
message that carries one delivery (docs/API.md#webhooks)."""

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from contracts.jobs import JobView


class WebhookEventType(StrEnum):
    PROCESSING = "job.processing"
    PROGRESS = "job.progress"
    COMPLETED = "job.completed"
    FAILED = "job.failed"
    CANCELLED = "job.cancelled"


TERMINAL_EVENTS = frozenset(
    {WebhookEventType.COMPLETED, WebhookEventType.FAILED, WebhookEventType.CANCELLED}
)


class WebhookPayload(BaseModel):
    """The body of every webhook request (Standard Webhooks' `type`/`timestamp`/`data`):
    `data` is the job exactly as `GET /status` returned it when the event happened."""

    type: WebhookEventType
    timestamp: datetime = Field(description="When the event happened (RFC 3339, UTC)")
    data: JobView


class WebhookSecret(BaseModel):
    """The key's signing secret: `whsec_` + base64 of the HMAC-SHA256 key."""

    secret: str = Field(pattern=r"^whsec_[A-Za-z0-9+/]+={0,2}$")


class DeliveryState(StrEnum):
    PENDING = "pending"  # queued, not tried yet
    DELIVERED = "delivered"  # the receiver answered 2xx
    RETRYING = "retrying"  # the last attempt failed; another one is scheduled
    FAILED = "failed"  # given up: out of attempts, or the receiver answered 410 Gone


class DeliveryAttempt(BaseModel):
    attempt: int = Field(ge=1, description="1 for the first attempt of the event")
    attempted_at: datetime
    status_code: int | None = Field(
        default=None, description="The receiver's HTTP status; null when none came back"
    )
    latency_ms: int = Field(ge=0)
    error: str | None = Field(default=None, description="Why it did not count as delivered")
    next_retry_at: datetime | None = Field(
        default=None, description="When the next attempt goes out; null when none will"
    )


class WebhookEventView(BaseModel):
    webhook_id: str = Field(description="The `webhook-id` header of every attempt of the event")
    type: WebhookEventType
    created_at: datetime
    url: str
    state: DeliveryState
    attempts: list[DeliveryAttempt]


class WebhookDeliveries(BaseModel):
    """`GET /jobs/{id}/webhooks`: the job's webhook and its events, oldest first."""

    job_id: str
    webhook_url: str | None
    webhook_events: list[WebhookEventType]
    events: list[WebhookEventView]


class WebhookMessage(BaseModel):
    """What the webhook queue carries: the event lives in the database. `series` counts the
    event's redeliveries, so a message scheduled before a redelivery is dropped."""

    v: int = 1
    webhook_id: str
    series: int = Field(default=0, ge=0)
