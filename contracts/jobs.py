"""The client-facing job, status and result shapes (docs/API.md)."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from contracts.errors import JobError


class JobStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"

    @property
    def is_terminal(self) -> bool:
        return self not in (JobStatus.PENDING, JobStatus.PROCESSING)


class Stage(StrEnum):
    QUEUED = "queued"
    DOWNLOADING = "downloading"
    GENERATING = "generating"
    ENCODING = "encoding"
    UPLOADING = "uploading"
    DONE = "done"
    CANCELLED = "cancelled"  # set by the edge when a client cancels; agents may not report it


class Resolution(StrEnum):
    P480 = "480p"
    P720 = "720p"

    @property
    def short_side(self) -> int:
        return 480 if self is Resolution.P480 else 720


class Quality(StrEnum):
    """Speed profile: upstream's full sampling, or a distilled LoRA at a few steps."""

    STANDARD = "standard"
    FAST = "fast"


MAX_PARALLEL_SEGMENTS = 32
"""The largest segment count a client may ask for with an integer `parallel`."""

Parallel = Literal["off", "auto"] | Annotated[int, Field(ge=2, le=MAX_PARALLEL_SEGMENTS)]
"""`off` runs the job on one agent, `auto` splits it by the agents recently seen, an integer
caps the number of segments."""


class SegmentView(BaseModel):
    """One segment of a job split across agents (`parallel`)."""

    index: int = Field(ge=0)
    status: JobStatus
    stage: Stage
    progress: float = Field(ge=0, le=100)
    start_seconds: float = Field(ge=0)
    end_seconds: float = Field(ge=0)
    attempts: int = 0


class InputKind(StrEnum):
    """What the job animates: a still portrait, or the frames of a video it dubs."""

    IMAGE = "image"
    VIDEO = "video"


class SpeakerMode(StrEnum):
    """How two speakers' tracks are laid out: one after the other (upstream's `add`), or at
    the same time (`para`, the shorter track padded with silence)."""

    SEQUENTIAL = "sequential"
    SIMULTANEOUS = "simultaneous"


class BoxSource(StrEnum):
    """Where the speakers' boxes came from: the request, the agent's face detector, or the
    left and right halves of the picture when it did not find exactly two faces."""

    GIVEN = "given"
    DETECTED = "detected"
    HALVES = "halves"


Box = tuple[int, int, int, int]
"""`[x1, y1, x2, y2]` in the picture's pixels: left, top, right, bottom (exclusive)."""


class SpeakerAssignment(BaseModel):
    """Which region of the picture speaks which track: `boxes[0]` speaks `audio`,
    `boxes[1]` speaks `audio2`."""

    boxes: tuple[Box, Box]
    source: BoxSource


class JobView(BaseModel):
    """What `POST /generate` and `GET /status/{id}` return."""

    job_id: str
    status: JobStatus
    progress: float = Field(ge=0, le=100, description="Percent, monotonic within an attempt")
    stage: Stage
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    result_url: str | None = None
    expires_at: datetime | None = None
    attempts: int = 0
    error: JobError | None = None
    queue_position: int | None = Field(
        default=None, description="Jobs ahead of this one while pending"
    )
    eta_seconds: int | None = Field(
        default=None, description="Estimated whole seconds to completion (rounded up)"
    )
    resolution: Resolution = Resolution.P720
    quality: Quality = Quality.STANDARD
    engine: str | None = Field(
        default=None, description="Engine that produced the video; `preview` is not InfiniteTalk"
    )
    parallel: Parallel = Field(
        default="off",
        description="`off`, `auto` or the maximum number of segments the job may be split into",
    )
    segments: list[SegmentView] | None = Field(
        default=None, description="Each segment's state, once the job has been split (else null)"
    )
    input_kind: InputKind = Field(
        default=InputKind.IMAGE, description="`video`: a dubbing job, which animates its frames"
    )
    speaker_mode: SpeakerMode | None = Field(
        default=None, description="Set on a two-speaker job (one with `audio2`)"
    )
    speakers: SpeakerAssignment | None = Field(
        default=None,
        description="Two-speaker jobs: the boxes the agent used and how it found them, once known",
    )


class JobList(BaseModel):
    jobs: list[JobView]
    next_cursor: str | None = None


class ResultView(BaseModel):
    """What `GET /result/{id}` returns."""

    job_id: str
    url: str
    expires_at: datetime
    content_type: str = "video/mp4"
    size_bytes: int
    duration_seconds: float
    width: int
    height: int
