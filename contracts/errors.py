"""The error envelope, the one list of error codes, and the shape of each code's
`details` (docs/API.md#errors)."""

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field


class ErrorCode(StrEnum):
    """Codes of the public error envelope, each with the HTTP status it travels with."""

    UNAUTHORIZED = "UNAUTHORIZED"
    INVALID_INPUT = "INVALID_INPUT"
    UNSUPPORTED_MEDIA = "UNSUPPORTED_MEDIA"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    AUDIO_TOO_LONG = "AUDIO_TOO_LONG"
    IMAGE_TOO_LARGE = "IMAGE_TOO_LARGE"
    JOB_NOT_FOUND = "JOB_NOT_FOUND"
    RESULT_NOT_READY = "RESULT_NOT_READY"
    RESULT_EXPIRED = "RESULT_EXPIRED"
    NOT_FOUND = "NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    CONFLICT = "CONFLICT"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    RATE_LIMITED = "RATE_LIMITED"
    REQUEST_TIMEOUT = "REQUEST_TIMEOUT"
    STORAGE_ERROR = "STORAGE_ERROR"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    VIDEO_TOO_LONG = "VIDEO_TOO_LONG"
    TWO_SPEAKERS_UNSUPPORTED = "TWO_SPEAKERS_UNSUPPORTED"
    SPEAKER_BOXES_INVALID = "SPEAKER_BOXES_INVALID"
    MISSING_CAPABILITY = "MISSING_CAPABILITY"

    @property
    def http_status(self) -> int:
        return _HTTP_STATUS[self]


_HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.INVALID_INPUT: 400,
    ErrorCode.UNSUPPORTED_MEDIA: 400,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.AUDIO_TOO_LONG: 413,
    ErrorCode.IMAGE_TOO_LARGE: 413,
    ErrorCode.JOB_NOT_FOUND: 404,
    ErrorCode.RESULT_NOT_READY: 404,
    ErrorCode.RESULT_EXPIRED: 410,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.CONFLICT: 409,
    ErrorCode.IDEMPOTENCY_KEY_REUSED: 422,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.REQUEST_TIMEOUT: 408,
    ErrorCode.STORAGE_ERROR: 503,
    ErrorCode.INTERNAL_ERROR: 500,
    ErrorCode.VIDEO_TOO_LONG: 413,
    ErrorCode.TWO_SPEAKERS_UNSUPPORTED: 400,
    ErrorCode.SPEAKER_BOXES_INVALID: 400,
    ErrorCode.MISSING_CAPABILITY: 422,
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
    AUDIO_TOO_LONG = "AUDIO_TOO_LONG"  # longer than the agent's MAX_AUDIO_SECONDS, decoded
    IMAGE_TOO_LARGE = "IMAGE_TOO_LARGE"  # more pixels than the agent's MAX_IMAGE_PIXELS
    INPUT_CHANGED = "INPUT_CHANGED"  # an uploaded input was replaced after /generate
    INTERNAL_ERROR = "INTERNAL_ERROR"
    VIDEO_UNDECODABLE = "VIDEO_UNDECODABLE"  # no frame of the video to dub decodes
    VIDEO_TOO_LONG = "VIDEO_TOO_LONG"  # longer than the agent's MAX_VIDEO_SECONDS, decoded
    NO_CAPABLE_AGENT = "NO_CAPABLE_AGENT"  # every agent that took it lacked what it needs


class NoDetails(BaseModel):
    """`{}`: the message says it all."""


class FieldError(BaseModel):
    field: str | None = Field(
        description="the form field, query parameter, header or dotted JSON path; "
        "null when the body as a whole is wrong"
    )
    message: str


class FieldErrors(BaseModel):
    """`INVALID_INPUT`: every problem found, each with the field it is about."""

    errors: list[FieldError] = Field(min_length=1)


class MediaDetails(BaseModel):
    """`UNSUPPORTED_MEDIA`: which file is not the kind of media it must be."""

    field: Literal["image", "audio", "video", "audio2"]


class TooLargeDetails(BaseModel):
    """`PAYLOAD_TOO_LARGE`: the limit that was broken; `field` when one file broke its own."""

    limit_bytes: int
    field: str | None = None


class AudioTooLongDetails(BaseModel):
    """`AUDIO_TOO_LONG`: the limit and the length the file's headers declare."""

    limit_seconds: float
    seconds: float


class ImageTooLargeDetails(BaseModel):
    """`IMAGE_TOO_LARGE`: the limit and the width x height the file's header declares."""

    limit_pixels: int
    pixels: int


class VideoTooLongDetails(BaseModel):
    """`VIDEO_TOO_LONG`: the limit and the length the video's `mvhd` header declares."""

    limit_seconds: float
    seconds: float


class TwoSpeakersDetails(BaseModel):
    """`TWO_SPEAKERS_UNSUPPORTED`: why this input cannot hold two speakers: a video (whose
    people move, while upstream fixes each speaker's region on the first frame), or a
    portrait-format image without `speaker_boxes` (no room for two people side by side)."""

    reason: Literal["video_input", "portrait_without_boxes"]


class SpeakerBoxesDetails(BaseModel):
    """`SPEAKER_BOXES_INVALID`: `outside` (a box leaves the picture: `box` is its index) or
    `overlap` (the boxes share more than half of the smaller one: `overlap` is that share)."""

    reason: Literal["outside", "overlap"]
    width: int
    height: int
    box: int | None = None
    overlap: float | None = None


class CapabilityDetails(BaseModel):
    """`MISSING_CAPABILITY` (agent API): what the job needs and what the agent lacks; the
    agent hands the message back for a capable one."""

    required: list[str]
    missing: list[str]


class JobDetails(BaseModel):
    """`JOB_NOT_FOUND`."""

    job_id: str


class JobStateDetails(BaseModel):
    """`RESULT_NOT_READY`: where the job is now."""

    status: str = Field(description="the job's status (JobStatus)")


class ConflictDetails(BaseModel):
    """`CONFLICT`: the job's status when it refuses the change, the upload id already used,
    or the header whose first request is still being processed; none when contended."""

    status: str | None = None
    field: str | None = None
    header: str | None = None


class HeaderDetails(BaseModel):
    """`IDEMPOTENCY_KEY_REUSED`: the header at fault."""

    header: str


class LimitName(StrEnum):
    """Which per-key limit a `RATE_LIMITED` answer is about."""

    REQUESTS_PER_MINUTE = "requests_per_minute"
    ACTIVE_JOBS = "active_jobs"
    DAILY_VIDEO_SECONDS = "daily_video_seconds"


class RateLimitDetails(BaseModel):
    """`RATE_LIMITED`: the limit that was reached, its value for this key and the use so far
    (requests in the window, unfinished jobs, or video seconds today, UTC)."""

    limit: LimitName
    allowed: int | float
    used: int | float


class StorageDetails(BaseModel):
    """`STORAGE_ERROR`: for agents, the object that is missing or has the wrong size."""

    key: str | None = None
    stored_bytes: int | None = None


ERROR_DETAILS: dict[ErrorCode, type[BaseModel]] = {
    ErrorCode.UNAUTHORIZED: NoDetails,
    ErrorCode.INVALID_INPUT: FieldErrors,
    ErrorCode.UNSUPPORTED_MEDIA: MediaDetails,
    ErrorCode.PAYLOAD_TOO_LARGE: TooLargeDetails,
    ErrorCode.AUDIO_TOO_LONG: AudioTooLongDetails,
    ErrorCode.IMAGE_TOO_LARGE: ImageTooLargeDetails,
    ErrorCode.JOB_NOT_FOUND: JobDetails,
    ErrorCode.RESULT_NOT_READY: JobStateDetails,
    ErrorCode.RESULT_EXPIRED: NoDetails,
    ErrorCode.NOT_FOUND: NoDetails,
    ErrorCode.METHOD_NOT_ALLOWED: NoDetails,
    ErrorCode.CONFLICT: ConflictDetails,
    ErrorCode.IDEMPOTENCY_KEY_REUSED: HeaderDetails,
    ErrorCode.RATE_LIMITED: RateLimitDetails,
    ErrorCode.REQUEST_TIMEOUT: NoDetails,
    ErrorCode.STORAGE_ERROR: StorageDetails,
    ErrorCode.INTERNAL_ERROR: NoDetails,
    ErrorCode.VIDEO_TOO_LONG: VideoTooLongDetails,
    ErrorCode.TWO_SPEAKERS_UNSUPPORTED: TwoSpeakersDetails,
    ErrorCode.SPEAKER_BOXES_INVALID: SpeakerBoxesDetails,
    ErrorCode.MISSING_CAPABILITY: CapabilityDetails,
}
"""The model of each code's `details`; fields at their default are left out of the reply."""


def details_of(code: ErrorCode, details: BaseModel | None = None) -> dict[str, Any]:
    """`details` as sent: refuses a model that is not `code`'s, so the shapes stay one each."""
    model = ERROR_DETAILS[code]
    chosen = model() if details is None else details
    if type(chosen) is not model:
        raise TypeError(f"{code} details are {model.__name__}, not {type(chosen).__name__}")
    return chosen.model_dump(mode="json", exclude_defaults=True)


class ErrorBody(BaseModel):
    code: ErrorCode
    message: str
    details: dict[str, Any] = Field(
        default_factory=dict, description="shaped by `code`: see ERROR_DETAILS"
    )


class ErrorEnvelope(BaseModel):
    error: ErrorBody


class JobError(BaseModel):
    """The error of a failed job: safe to show to the client that owns it."""

    code: FailureCode
    message: str
