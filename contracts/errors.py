"""The error envelope and the one list of error codes (docs/API.md)."""

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class ErrorCode(StrEnum):
    """Codes of the public error envelope, each with the HTTP status it travels with."""

    UNAUTHORIZED = "UNAUTHORIZED"
    INVALID_INPUT = "INVALID_INPUT"
    UNSUPPORTED_MEDIA = "UNSUPPORTED_MEDIA"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    JOB_NOT_FOUND = "JOB_NOT_FOUND"
    RESULT_NOT_READY = "RESULT_NOT_READY"
    RESULT_EXPIRED = "RESULT_EXPIRED"
    NOT_FOUND = "NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    CONFLICT = "CONFLICT"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    RATE_LIMITED = "RATE_LIMITED"
    STORAGE_ERROR = "STORAGE_ERROR"
    INTERNAL_ERROR = "INTERNAL_ERROR"

    @property
    def http_status(self) -> int:
        return _HTTP_STATUS[self]


_HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.INVALID_INPUT: 400,
    ErrorCode.UNSUPPORTED_MEDIA: 400,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.JOB_NOT_FOUND: 404,
    ErrorCode.RESULT_NOT_READY: 404,
    ErrorCode.RESULT_EXPIRED: 410,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.CONFLICT: 409,
    ErrorCode.IDEMPOTENCY_KEY_REUSED: 422,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.STORAGE_ERROR: 503,
    ErrorCode.INTERNAL_ERROR: 500,
}


class FailureCode(StrEnum):
    """Why a job failed, as carried in `JobView.error.code`."""

    INVALID_INPUT = "INVALID_INPUT"
    GENERATION_FAILED = "GENERATION_FAILED"
    GPU_OUT_OF_MEMORY = "GPU_OUT_OF_MEMORY"
    TIMEOUT = "TIMEOUT"
    STORAGE_ERROR = "STORAGE_ERROR"
    MAX_ATTEMPTS_EXCEEDED = "MAX_ATTEMPTS_EXCEEDED"
    AGENT_SHUTDOWN = "AGENT_SHUTDOWN"  # a stopping agent hands the job back: not its fault
    QUALITY_UNAVAILABLE = "QUALITY_UNAVAILABLE"  # the agent cannot make this quality
    INTERNAL_ERROR = "INTERNAL_ERROR"


class ErrorBody(BaseModel):
    code: ErrorCode
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorEnvelope(BaseModel):
    error: ErrorBody


class JobError(BaseModel):
    """The error of a failed job: safe to show to the client that owns it."""

    code: FailureCode
    message: str
