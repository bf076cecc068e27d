"""The edge's /agent API: claim, progress (heartbeat), complete, fail, a parallel job's
segment plan and its commit, and the idle heartbeat (docs/ARCHITECTURE.md).

Claim, complete, fail and the plan calls retry transient failures with the client's
`RetryPolicy`, so an edge restart of a few seconds costs nothing. Progress and the idle
heartbeat are single tries: their senders pace their own retries and must never block on one.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from contracts import (
    AgentFailRequest,
    Capability,
    ClaimRequest,
    ClaimResponse,
    CompleteRequest,
    ErrorEnvelope,
    ProgressReply,
    ProgressRequest,
    SegmentCommitRequest,
    SegmentPlanReply,
    SegmentPlanRequest,
)
from contracts.agent import AgentHeartbeat, HeartbeatReply
from gpu_agent.retry import (
    API_RETRY,
    CallError,
    RetryPolicy,
    is_transient_status,
    is_transient_transport,
)


class EdgeError(CallError):
    """The edge refused or could not be reached (`transient` when retrying may help)."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        transient: bool = False,
    ) -> None:
        super().__init__(message, status_code=status_code, transient=transient)
        self.code = code
        self.request_id = request_id


class ClaimConflict(EdgeError):
    """409: the job is not claimable, or our claim token is stale (another attempt owns it)."""


class JobGone(EdgeError):
    """404 `JOB_NOT_FOUND`: the edge does not know the job (deleted or never existed)."""


class EdgeClient:
    """Typed calls to the edge over an injected `httpx.Client`.

    The bearer token is sent per request rather than set on the client, so the same
    client can never leak it to a signed storage URL.
    """

    def __init__(
        self,
        client: httpx.Client,
        *,
        base_url: str,
        token: str,
        retry: RetryPolicy = API_RETRY,
    ) -> None:
        self._client = client
        self._base = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"}
        self._retry = retry

    def resolve(self, url: str) -> str:
        """Signed URLs may come back relative to the edge (local runtime); make them absolute."""
        return str(httpx.URL(self._base + "/").join(url))

    def claim(
        self,
        job_id: str,
        *,
        agent_id: str,
        lease_id: str | None,
        capabilities: Collection[Capability] = (Capability.IMAGE,),
    ) -> ClaimResponse:
        """A job whose needs `capabilities` lack is refused (422 MISSING_CAPABILITY)."""
        body = ClaimRequest(agent_id=agent_id, lease_id=lease_id, capabilities=sorted(capabilities))
        claim = self._retry.call(
            lambda: self._call(job_id, "claim", body, ClaimResponse), what="edge claim"
        )
        if claim.job_id != job_id:
            raise EdgeError(f"claim for job {job_id} answered for job {claim.job_id}")
        return claim

    def progress(self, job_id: str, body: ProgressRequest) -> ProgressReply:
        return self._call(job_id, "progress", body, ProgressReply)

    def complete(self, job_id: str, body: CompleteRequest) -> None:
        self._retry.call(lambda: self._call(job_id, "complete", body, None), what="edge complete")

    def fail(self, job_id: str, body: AgentFailRequest) -> None:
        self._retry.call(lambda: self._call(job_id, "fail", body, None), what="edge fail")

    def plan_segments(self, job_id: str, body: SegmentPlanRequest) -> SegmentPlanReply:
        """Register a parallel job's segments; the reply says where each one's audio goes."""
        reply: SegmentPlanReply = self._retry.call(
            lambda: self._call(job_id, "segments", body, SegmentPlanReply), what="edge segments"
        )
        return reply

    def commit_segments(self, job_id: str, body: SegmentCommitRequest) -> None:
        """Every segment's audio is uploaded: the edge queues the segments."""
        self._retry.call(
            lambda: self._call(job_id, "segments/commit", body, None), what="edge segments commit"
        )

    def heartbeat(self, body: AgentHeartbeat) -> HeartbeatReply:
        """Alive between jobs; the reply says whether this agent's pod is being drained."""
        reply: HeartbeatReply = self._post("/agent/heartbeat", "heartbeat", body, HeartbeatReply)
        return reply

    def _call(
        self, job_id: str, action: str, body: BaseModel, reply: type[BaseModel] | None
    ) -> Any:
        return self._post(f"/agent/jobs/{quote(job_id, safe='')}/{action}", action, body, reply)

    def _post(self, path: str, action: str, body: BaseModel, reply: type[BaseModel] | None) -> Any:
        url = self._base + path
        try:
            response = self._client.post(
                url, content=body.model_dump_json(), headers=self._json_headers()
            )
        except httpx.HTTPError as exc:
            raise EdgeError(
                f"{action} failed: {type(exc).__name__}: {exc}",
                transient=is_transient_transport(exc),
            ) from exc
        if not response.is_success:
            raise _error_for(action, response)
        if reply is None:
            return None
        try:
            return reply.model_validate_json(response.content)
        except ValidationError as exc:
            raise EdgeError(
                f"{action} returned a malformed body ({exc.error_count()} error(s))",
                status_code=response.status_code,
                request_id=response.headers.get("x-request-id"),
            ) from exc

    def _json_headers(self) -> dict[str, str]:
        return {**self._headers, "Content-Type": "application/json"}


def _error_for(action: str, response: httpx.Response) -> EdgeError:
    """Map a non-2xx reply; only a 404 that names the job means the job is gone.

    A bare 404 (a wrong EDGE_URL, a missing route) must not make the agent ack and drop
    every job, so it stays a plain `EdgeError`: the message is handed back, not acked.
    Only 429 and 5xx gateway/overload answers are `transient` (retried in place).
    """
    code: str | None = None
    message = ""
    try:
        envelope = ErrorEnvelope.model_validate_json(response.content)
        code, message = envelope.error.code.value, envelope.error.message
    except ValidationError:
        pass
    text = f"{action} failed with HTTP {response.status_code}"
    if code:
        text += f" {code}: {message}"
    kwargs: dict[str, Any] = {
        "status_code": response.status_code,
        "code": code,
        "request_id": response.headers.get("x-request-id"),
        "transient": is_transient_status(response.status_code),
    }
    if response.status_code == 409:
        return ClaimConflict(text, **kwargs)
    if response.status_code == 404 and code == "JOB_NOT_FOUND":
        return JobGone(text, **kwargs)
    return EdgeError(text, **kwargs)
