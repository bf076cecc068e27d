"""Wire models shared by the edge, the GPU agent and the client. No I/O lives here."""

from contracts.agent import (
    AgentFailRequest,
    ClaimInputs,
    ClaimOutput,
    ClaimRequest,
    ClaimResponse,
    CompleteRequest,
    JobSettings,
    ProgressReply,
    ProgressRequest,
    ResultMetadata,
)
from contracts.api_keys import KeyCreated, KeyCreateRequest, KeyList, KeyView
from contracts.errors import ErrorBody, ErrorCode, ErrorEnvelope, FailureCode, JobError
from contracts.jobs import JobList, JobStatus, JobView, Quality, Resolution, ResultView, Stage
from contracts.queue import (
    AckRequest,
    AckResult,
    LeaseRef,
    PulledMessage,
    PullRequest,
    PullResult,
    QueueMessage,
    RetryRef,
)
from contracts.usage import AdminUsageReport, KeyUsageBucket, UsageBucket, UsageReport

__all__ = [
    "AckRequest",
    "AckResult",
    "AdminUsageReport",
    "AgentFailRequest",
    "ClaimInputs",
    "ClaimOutput",
    "ClaimRequest",
    "ClaimResponse",
    "CompleteRequest",
    "ErrorBody",
    "ErrorCode",
    "ErrorEnvelope",
    "FailureCode",
    "JobError",
    "JobList",
    "JobSettings",
    "JobStatus",
    "JobView",
    "KeyCreateRequest",
    "KeyCreated",
    "KeyList",
    "KeyUsageBucket",
    "KeyView",
    "LeaseRef",
    "ProgressReply",
    "ProgressRequest",
    "PullRequest",
    "PullResult",
    "PulledMessage",
    "Quality",
    "QueueMessage",
    "Resolution",
    "ResultMetadata",
    "ResultView",
    "RetryRef",
    "Stage",
    "UsageBucket",
    "UsageReport",
]
