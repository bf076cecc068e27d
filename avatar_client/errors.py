"""One exception class per error code of the API, built from the error envelope.

Catch `AvatarError` for everything; each subclass names one `ErrorCode` of docs/API.md#errors.
"""

from typing import TYPE_CHECKING, Any

import httpx

from contracts import ErrorCode, JobStatus

if TYPE_CHECKING:
    from contracts import JobView

REQUEST_ID_HEADER = "X-Request-ID"


class AvatarError(Exception):
    """An API call that did not succeed: the envelope's code, message and details.

    `status_code` is 0 when no HTTP answer came (connection failures, client-side checks);
    `request_id` is the edge's `X-Request-ID`, the key to its logs.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int = 0,
        code: str = "",
        details: dict[str, Any] | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}" if code else message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.details: dict[str, Any] = details or {}
        self.request_id = request_id


class ConnectionFailed(AvatarError):
    """The server could not be reached, or the connection broke (after the retries)."""


class MissingApiKey(AvatarError):
    """No API key was given, found in `AVATAR_API_KEY`, or in the local dev key file."""


class Unauthorized(AvatarError):
    pass


class InvalidInput(AvatarError):
    pass


class UnsupportedMedia(AvatarError):
    pass


class PayloadTooLarge(AvatarError):
    pass


class AudioTooLong(AvatarError):
    """`.details`: `limit_seconds` and the `seconds` the audio's headers declare."""


class ImageTooLarge(AvatarError):
    """`.details`: `limit_pixels` and the `pixels` the image's header declares."""


class VideoTooLong(AvatarError):
    """`.details`: `limit_seconds` and the `seconds` the video's header declares."""


class TwoSpeakersUnsupported(AvatarError):
    """`.details.reason`: `video_input` (two speakers need an image) or
    `portrait_without_boxes` (a portrait-format image needs `speaker_boxes`)."""


class SpeakerBoxesInvalid(AvatarError):
    """`.details`: `reason` (`outside` or `overlap`), the picture's `width` and `height`,
    and the `box` that leaves it or the boxes' `overlap`."""


class MissingCapability(AvatarError):
    """The agent API's refusal of a claim; clients never get it."""


class NotFound(AvatarError):
    pass


class JobNotFound(AvatarError):
    pass


class ResultNotReady(AvatarError):
    pass


class ResultExpired(AvatarError):
    pass


class MethodNotAllowed(AvatarError):
    pass


class Conflict(AvatarError):
    pass


class IdempotencyKeyReused(AvatarError):
    pass


class RateLimited(AvatarError):
    pass


class RequestTimeout(AvatarError):
    pass


class StorageError(AvatarError):
    pass


class InternalError(AvatarError):
    pass


class InvalidResponse(AvatarError):
    """A 2xx answer whose body is not what the API documents (a proxy, a version mismatch)."""


class JobFailed(AvatarError):
    """`run()` saw the job end failed, cancelled or expired; `.job` is its last view."""

    def __init__(self, job: "JobView") -> None:
        if job.status is JobStatus.FAILED and job.error is not None:
            code, message = str(job.error.code), job.error.message
        else:
            code, message = job.status.value.upper(), f"job {job.job_id} ended {job.status.value}"
        super().__init__(message, code=code)
        self.job = job


class WaitTimeout(AvatarError, TimeoutError):
    """The job was not terminal within the `timeout` given to `wait()` or `run()`."""


_BY_CODE: dict[ErrorCode, type[AvatarError]] = {
    ErrorCode.UNAUTHORIZED: Unauthorized,
    ErrorCode.INVALID_INPUT: InvalidInput,
    ErrorCode.UNSUPPORTED_MEDIA: UnsupportedMedia,
    ErrorCode.PAYLOAD_TOO_LARGE: PayloadTooLarge,
    ErrorCode.AUDIO_TOO_LONG: AudioTooLong,
    ErrorCode.IMAGE_TOO_LARGE: ImageTooLarge,
    ErrorCode.JOB_NOT_FOUND: JobNotFound,
    ErrorCode.RESULT_NOT_READY: ResultNotReady,
    ErrorCode.RESULT_EXPIRED: ResultExpired,
    ErrorCode.NOT_FOUND: NotFound,
    ErrorCode.METHOD_NOT_ALLOWED: MethodNotAllowed,
    ErrorCode.CONFLICT: Conflict,
    ErrorCode.IDEMPOTENCY_KEY_REUSED: IdempotencyKeyReused,
    ErrorCode.RATE_LIMITED: RateLimited,
    ErrorCode.REQUEST_TIMEOUT: RequestTimeout,
    ErrorCode.STORAGE_ERROR: StorageError,
    ErrorCode.INTERNAL_ERROR: InternalError,
    ErrorCode.VIDEO_TOO_LONG: VideoTooLong,
    ErrorCode.TWO_SPEAKERS_UNSUPPORTED: TwoSpeakersUnsupported,
    ErrorCode.SPEAKER_BOXES_INVALID: SpeakerBoxesInvalid,
    ErrorCode.MISSING_CAPABILITY: MissingCapability,
}
# Answers without an envelope (a proxy, a load balancer): typed by status alone.
_BY_STATUS: dict[int, type[AvatarError]] = {
    401: Unauthorized,
    404: NotFound,
    413: PayloadTooLarge,
    429: RateLimited,
    500: InternalError,
}


def error_from_response(response: httpx.Response) -> AvatarError:
    """The typed error of a non-2xx answer (its body must have been read)."""
    request_id = response.headers.get(REQUEST_ID_HEADER)
    try:
        error = response.json()["error"]
        code, message = str(error["code"]), str(error["message"])
        details = error.get("details") or {}
        if not isinstance(details, dict):
            raise TypeError("details is not an object")
    except (ValueError, KeyError, TypeError):
        text = response.text.strip()[:200] or response.reason_phrase
        cls = _BY_STATUS.get(response.status_code, AvatarError)
        return cls(
            text,
            status_code=response.status_code,
            code=f"HTTP_{response.status_code}",
            request_id=request_id,
        )
    known = code in ErrorCode.__members__
    cls = _BY_CODE[ErrorCode(code)] if known else _BY_STATUS.get(response.status_code, AvatarError)
    return cls(
        message,
        status_code=response.status_code,
        code=code,
        details=details,
        request_id=request_id,
    )
