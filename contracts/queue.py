"""The queue message and Cloudflare Queues' HTTP pull/ack shapes (docs/ARCHITECTURE.md)."""

import base64
import json
from datetime import datetime

from pydantic import BaseModel, Field


class QueueMessage(BaseModel):
    """The only thing the queue carries: the job lives in the job store."""

    v: int = 1
    job_id: str
    enqueued_at: datetime

    def encode_for_pull(self) -> str:
        """Body as a pull consumer receives a `json` message: base64 of the JSON text."""
        return base64.b64encode(self.model_dump_json().encode()).decode()

    @classmethod
    def decode_pulled(cls, message: "PulledMessage") -> "QueueMessage":
        """Decode a pulled body; `json` and `bytes` arrive base64-encoded, `text` as is."""
        content_type = message.metadata.get("CF-Content-Type", "json")
        raw = message.body
        if content_type in ("json", "bytes"):
            raw = base64.b64decode(raw).decode()
        return cls.model_validate(json.loads(raw))


class PullRequest(BaseModel):
    batch_size: int = Field(default=5, ge=1, le=100)
    visibility_timeout_ms: int | None = Field(default=None, ge=1, le=12 * 3600 * 1000)
    # Cloudflare's docs also show the older name; accept it so any client works locally.
    visibility_timeout: int | None = Field(default=None, ge=1, le=12 * 3600 * 1000)

    def timeout_ms(self, default_ms: int = 30_000) -> int:
        return self.visibility_timeout_ms or self.visibility_timeout or default_ms


class PulledMessage(BaseModel):
    id: str
    body: str
    timestamp_ms: int
    attempts: int
    lease_id: str
    metadata: dict[str, str] = Field(default_factory=dict)


class PullResult(BaseModel):
    messages: list[PulledMessage] = Field(default_factory=list)
    message_backlog_count: int = 0


class LeaseRef(BaseModel):
    lease_id: str


class RetryRef(BaseModel):
    lease_id: str
    delay_seconds: int | None = Field(default=None, ge=0, le=43200)


class AckRequest(BaseModel):
    acks: list[LeaseRef] = Field(default_factory=list)
    retries: list[RetryRef] = Field(default_factory=list)


class AckResult(BaseModel):
    ackCount: int = 0
    retryCount: int = 0
    warnings: list[str] = Field(default_factory=list)
