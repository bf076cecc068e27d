"""The agent protocol: claim, progress (heartbeat), complete, fail (docs/ARCHITECTURE.md)."""

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from contracts.errors import FailureCode
from contracts.jobs import (
    Box,
    Parallel,
    Quality,
    Resolution,
    SpeakerAssignment,
    SpeakerMode,
    Stage,
)


class Capability(StrEnum):
    """What an agent can make: from its engine and the weights it has."""

    IMAGE = "image"
    VIDEO = "video"
    """Dubbing: a video input."""
    TWO_SPEAKERS = "two_speakers"
    """A second speaker's track (upstream's multi weights)."""


class ClaimRequest(BaseModel):
    agent_id: str = Field(min_length=1, max_length=200)
    lease_id: str | None = Field(default=None, max_length=4096)
    capabilities: list[Capability] | None = Field(
        default=None,
        max_length=len(Capability),
        description="what this agent can make; an agent that sends none is taken to make "
        "image jobs only. A job needing more is refused with MISSING_CAPABILITY",
    )


class ClaimInputs(BaseModel):
    image_url: str | None = Field(default=None, description="absent on a video job")
    audio_url: str
    image_etag: str | None = Field(
        default=None,
        description="the ETag the image had when the job was created (uploaded inputs only): "
        "an agent refuses other bytes and fails the job with INPUT_CHANGED",
    )
    audio_etag: str | None = Field(default=None, description="the same for the audio")
    video_url: str | None = Field(default=None, description="the video to dub, instead of image")
    video_etag: str | None = None
    audio2_url: str | None = Field(default=None, description="the second speaker's track")
    audio2_etag: str | None = None


class ClaimOutput(BaseModel):
    upload_url: str
    key: str


class JobSettings(BaseModel):
    """Per-job generation settings handed to the engine."""

    resolution: Resolution = Resolution.P720
    seed: int | None = None
    quality: Quality = Quality.STANDARD
    heartbeat_interval_seconds: float = 15.0
    parallel: Parallel = "off"
    speaker_mode: SpeakerMode | None = Field(
        default=None, description="set exactly when the inputs bring audio2"
    )
    speaker_boxes: tuple[Box, Box] | None = Field(
        default=None, description="the client's boxes; None: the agent finds the faces"
    )


MAX_PLAN_SEGMENTS = 1000
"""Bounds a plan's body; `auto` on the longest audio stays far below it."""

TaskKind = Literal["job", "plan", "segment", "stitch"]


class PlanTask(BaseModel):
    """Split the job's audio (`inputs.audio_url`) at silences, then register the segments."""

    max_segments: int | None = Field(default=None, ge=1, description="None: choose (auto)")
    min_seconds: float = Field(gt=0)
    max_seconds: float = Field(gt=0)
    agents_seen: int = Field(ge=1, description="agents active in the last 10 minutes")


class SegmentTask(BaseModel):
    """Render one segment: `inputs.audio_url` is the segment's own audio."""

    parent_job_id: str
    index: int = Field(ge=0)
    count: int = Field(ge=1)
    start_seconds: float = Field(ge=0)
    end_seconds: float = Field(gt=0)


class StitchTask(BaseModel):
    """Join the segments' videos in order under the original audio (`inputs.audio_url`)."""

    parent_job_id: str
    segment_urls: list[str]
    segment_seconds: list[tuple[float, float]]
    crossfade_frames: int = Field(default=0, ge=0)
    audio_seconds: float = Field(gt=0)
    audio_track_url: str | None = Field(
        default=None,
        description="the original audio as the output's AAC track (M4A), encoded once by the "
        "planner: the stitch only remuxes it; None when the planner uploaded none (the stitch "
        "encodes `inputs.audio_url` itself)",
    )


class ClaimResponse(BaseModel):
    job_id: str
    claim_token: str
    attempt: int
    inputs: ClaimInputs
    output: ClaimOutput
    prompt: str
    settings: JobSettings
    task: TaskKind = "job"
    plan: PlanTask | None = None
    segment: SegmentTask | None = None
    stitch: StitchTask | None = None


class SegmentPlanItem(BaseModel):
    index: int = Field(ge=0)
    start_seconds: float = Field(ge=0, allow_inf_nan=False)
    end_seconds: float = Field(gt=0, allow_inf_nan=False)


class SegmentPlanRequest(BaseModel):
    claim_token: str
    audio_seconds: float = Field(gt=0, allow_inf_nan=False)
    segments: list[SegmentPlanItem] = Field(min_length=1, max_length=MAX_PLAN_SEGMENTS)


class SegmentGrant(BaseModel):
    """Where the planner PUTs one segment's audio (WAV, PCM16, the source's rate)."""

    index: int
    audio_upload_url: str
    audio_key: str


class SegmentPlanReply(BaseModel):
    segments: list[SegmentGrant]
    audio_track_upload_url: str | None = Field(
        default=None,
        description="where the planner PUTs the original audio's AAC track (M4A, audio/mp4) "
        "after the commit, so the stitch need not encode it",
    )


class SegmentCommitRequest(BaseModel):
    claim_token: str


class ProgressRequest(BaseModel):
    claim_token: str
    progress: float = Field(ge=0, le=100)
    stage: Stage
    eta_seconds: float | None = Field(default=None, ge=0)
    speakers: SpeakerAssignment | None = Field(
        default=None, description="a two-speaker job's boxes, once the agent has chosen them"
    )

    @field_validator("stage")
    @classmethod
    def _not_cancelled(cls, stage: Stage) -> Stage:
        """Only a client cancels a job (`DELETE /jobs/{id}`); an agent that wants to stop
        fails the job or hands it back."""
        if stage is Stage.CANCELLED:
            raise ValueError("an agent may not report stage 'cancelled'; fail the job instead")
        return stage


class ProgressReply(BaseModel):
    cancel_requested: bool = False


class ResultMetadata(BaseModel):
    """What the agent measured on its own output before uploading it. Each bound is one an
    SQL integer or a finite number holds, so a garbled report is refused, not stored."""

    size_bytes: int = Field(ge=1, lt=2**63)
    duration_seconds: float = Field(gt=0, allow_inf_nan=False)
    width: int = Field(gt=0, lt=2**31)
    height: int = Field(gt=0, lt=2**31)
    engine: str = Field(min_length=1, max_length=64)
    gpu_seconds: float | None = Field(
        default=None,
        ge=0,
        lt=2**31,
        allow_inf_nan=False,
        description="the engine's wall time generating the video, metered per job "
        "(None from agents older than usage metering)",
    )
    speakers: SpeakerAssignment | None = Field(
        default=None,
        description="a two-speaker job's boxes as used (also sent with progress once chosen)",
    )


class CompleteRequest(BaseModel):
    claim_token: str
    result: ResultMetadata


class AgentFailRequest(BaseModel):
    claim_token: str
    code: FailureCode
    message: str = Field(max_length=2000)
    retryable: bool = False


class AgentHeartbeat(BaseModel):
    """An agent's sign of life between jobs, naming the RunPod pod it runs on (if any)."""

    agent_id: str = Field(min_length=1, max_length=200)
    pod_id: str | None = Field(default=None, min_length=1, max_length=200)
    busy: bool = False
    job_id: str | None = Field(default=None, max_length=200)

    @field_validator("busy", mode="before")
    @classmethod
    def _json_boolean(cls, value: object) -> object:
        """`true` or `false` only: Litestar validates bodies leniently, which reads 0 as false."""
        if not isinstance(value, bool):
            raise ValueError("busy is true or false")
        return value


class HeartbeatReply(BaseModel):
    drain: bool = Field(
        default=False,
        description="the pool will stop this pod: pull nothing more and keep heartbeating; "
        "false again means pull again",
    )
