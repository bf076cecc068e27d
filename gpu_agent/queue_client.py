"""Cloudflare Queues HTTP pull consumer (docs/ARCHITECTURE.md, agent flow).

The local edge serves the same pull/ack API, so this one client is what runs in both
places and what the end-to-end tests exercise. Ack and retry calls retry transient
failures with the client's `RetryPolicy`; a pull is a single try because the pull loop
is its retry (it backs off on the stop event, so a shutdown is never held up).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import ValidationError

from contracts import AckRequest, AckResult, LeaseRef, PulledMessage, PullRequest, PullResult
from contracts.queue import RetryRef
from gpu_agent.retry import (
    API_RETRY,
    CallError,
    RetryPolicy,
    is_transient_status,
    is_transient_transport,
)


class QueueError(CallError):
    """The queue API refused or could not be reached (`transient` when retrying may help)."""


class CloudflareQueueClient:
    """Pull, ack and retry messages of one queue over an injected `httpx.Client`."""

    def __init__(
        self,
        client: httpx.Client,
        *,
        api_base: str,
        account_id: str,
        queue_id: str,
        api_token: str,
        retry: RetryPolicy = API_RETRY,
    ) -> None:
        self._client = client
        self._retry = retry
        self._base = (
            f"{api_base.rstrip('/')}/accounts/{quote(account_id, safe='')}"
            f"/queues/{quote(queue_id, safe='')}/messages"
        )
        self._headers = {"Authorization": f"Bearer {api_token}"}

    def pull(self, batch_size: int = 1, visibility_timeout_ms: int = 60_000) -> list[PulledMessage]:
        """Lease up to `batch_size` messages; an empty list means the queue is idle."""
        body = PullRequest(batch_size=batch_size, visibility_timeout_ms=visibility_timeout_ms)
        result = self._post("pull", body.model_dump(exclude_none=True))
        try:
            return PullResult.model_validate(result).messages
        except ValidationError as exc:
            raise QueueError(f"malformed pull result: {exc.error_count()} error(s)") from exc

    def ack(self, lease_ids: Sequence[str]) -> AckResult:
        """Delete messages for good (handled, or not worth handling)."""
        body = AckRequest(acks=[LeaseRef(lease_id=lease_id) for lease_id in lease_ids])
        return self._ack_request(body)

    def retry(self, lease_id: str, delay_seconds: int | None = None) -> AckResult:
        """Hand a message back for redelivery after `delay_seconds`."""
        body = AckRequest(retries=[RetryRef(lease_id=lease_id, delay_seconds=delay_seconds)])
        return self._ack_request(body)

    def _ack_request(self, body: AckRequest) -> AckResult:
        payload = body.model_dump(exclude_none=True)
        result = self._retry.call(lambda: self._post("ack", payload), what="queue ack")
        try:
            return AckResult.model_validate(result)
        except ValidationError as exc:
            raise QueueError(f"malformed ack result: {exc.error_count()} error(s)") from exc

    def _post(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST and unwrap Cloudflare's `{"success","errors","result"}` envelope."""
        try:
            response = self._client.post(
                f"{self._base}/{action}", json=payload, headers=self._headers
            )
        except httpx.HTTPError as exc:
            raise QueueError(
                f"queue {action} failed: {type(exc).__name__}: {exc}",
                transient=is_transient_transport(exc),
            ) from exc
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise QueueError(
                f"queue {action} returned HTTP {response.status_code} without a JSON object",
                status_code=response.status_code,
                transient=is_transient_status(response.status_code),
            )
        if not response.is_success or data.get("success") is not True:
            raise QueueError(
                f"queue {action} failed with HTTP {response.status_code}: "
                f"{_describe_errors(data.get('errors'))}",
                status_code=response.status_code,
                transient=is_transient_status(response.status_code),
            )
        result = data.get("result")
        return result if isinstance(result, dict) else {}


def _describe_errors(errors: object) -> str:
    """Cloudflare errors are `[{"code": int, "message": str}]`; keep them short for logs."""
    if not isinstance(errors, list) or not errors:
        return "no error detail"
    parts = []
    for error in errors[:3]:
        if isinstance(error, dict):
            parts.append(f"{error.get('code', '?')} {error.get('message', '')}".strip())
        else:
            parts.append(str(error))
    return "; ".join(parts)
