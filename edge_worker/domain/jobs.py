"""The job state machine, plain Python with no HTTP or storage in it.

    pending ──claim──▶ processing ──complete──▶ completed ──expire──▶ expired
       ▲                  │  │
       └─ retryable fail ─┘  └─ fail ──▶ failed
       └─ agent lost ─────┘     (and lost too often ──▶ failed)
    pending | processing ──cancel──▶ cancelled

Only a completed job has `completed_at`; a cancelled one is at stage `cancelled`.

A job asked for with `parallel` is first claimed to be planned: its planner registers a
plan (`record_plan`) and commits it (`split`), which leaves the job processing with no
agent while its segments, child jobs of their own, run through the same machine; the
edge then ends it once (`complete_split` or `fail_split`, see `domain/segments.py`).

Every transition returns a new `Job` with `version` bumped, so stores apply it as a
compare-and-swap and concurrent writers (two agents, the sweep, a client) cannot both win.
"""

import hmac
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from contracts import (
    Capability,
    FailureCode,
    JobStatus,
    Quality,
    Resolution,
    ResultMetadata,
    SpeakerAssignment,
    SpeakerMode,
    Stage,
)
from contracts.jobs import Box, Parallel
from contracts.webhooks import WebhookEventType

Transition = Callable[["Job"], "Job"]


class JobStateError(Exception):
    """A transition that the job's current state does not allow."""


class NotClaimable(JobStateError):
    pass


class StaleClaim(JobStateError):
    """The caller's claim token is not the job's current one: a newer attempt owns the job."""


JobTask = Literal["job", "segment", "stitch"]
"""A client's job, or one of the two kinds of child rows of a split job."""


@dataclass(frozen=True)
class SegmentPlan:
    """A planner's cut points, registered by the claim of attempt `attempt`."""

    attempt: int
    audio_seconds: float
    bounds: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Job:
    id: str
    owner: str
    status: JobStatus
    stage: Stage
    progress: float
    prompt: str
    resolution: Resolution
    seed: int | None
    image_key: str
    audio_key: str
    created_at: datetime
    updated_at: datetime
    quality: Quality = Quality.STANDARD
    started_at: datetime | None = None
    completed_at: datetime | None = None
    expires_at: datetime | None = None
    heartbeat_at: datetime | None = None
    attempts: int = 0
    error_code: FailureCode | None = None
    error_message: str | None = None
    claim_token: str | None = None
    agent_id: str | None = None
    eta_seconds: float | None = None
    result_key: str | None = None
    result: ResultMetadata | None = None
    enqueued_at: datetime | None = None
    inputs_deleted: bool = False
    # The ETags of uploaded inputs when /generate checked them (None: stored by the edge
    # itself); the agent refuses an input that no longer has it.
    image_etag: str | None = None
    audio_etag: str | None = None
    # Measured at the edge from the audio's header (None: its header does not tell).
    audio_seconds: float | None = None
    parallel: Parallel = "off"
    # A child row (segment or stitch) names its parent; a split parent counts its segments.
    parent_id: str | None = None
    task: JobTask = "job"
    segment_index: int | None = None
    segment_count: int | None = None
    segment_start_seconds: float | None = None
    segment_end_seconds: float | None = None
    plan: SegmentPlan | None = None
    # Where the job's webhook events go, and which of them (none without a URL).
    webhook_url: str | None = None
    webhook_events: frozenset[WebhookEventType] = frozenset()
    # Dubbing: the video replaces the image (whose key is then empty).
    video_key: str | None = None
    video_etag: str | None = None
    # Two speakers: the second track, how the two are laid out, the client's boxes, and
    # the assignment the agent used (reported with its progress).
    audio2_key: str | None = None
    audio2_etag: str | None = None
    speaker_mode: SpeakerMode | None = None
    speaker_boxes: tuple[Box, Box] | None = None
    speakers: SpeakerAssignment | None = None
    # Claims refused because the agent lacked a capability the job needs.
    refusals: int = 0
    version: int = 0

    @property
    def wants_plan(self) -> bool:
        """A client's parallel job that has not been split yet: its claim plans it."""
        return self.task == "job" and self.parallel != "off" and self.segment_count is None

    @property
    def is_split(self) -> bool:
        return self.task == "job" and self.segment_count is not None

    @property
    def input_keys(self) -> list[str]:
        keys = (self.image_key, self.video_key, self.audio_key, self.audio2_key)
        return [key for key in keys if key]

    @property
    def needs(self) -> frozenset[Capability]:
        """What an agent must be able to make to run this job."""
        needed = {Capability.VIDEO if self.video_key else Capability.IMAGE}
        if self.audio2_key:
            needed.add(Capability.TWO_SPEAKERS)
        return frozenset(needed)

    @property
    def video_seconds(self) -> float | None:
        """Metered: the length of the video it produced, once completed."""
        return self.result.duration_seconds if self.result else None

    @property
    def gpu_seconds(self) -> float | None:
        """Metered: the engine's wall time, as its agent reported it at complete."""
        return self.result.gpu_seconds if self.result else None

    @property
    def engine(self) -> str | None:
        return self.result.engine if self.result else None


def new_job(
    *,
    job_id: str,
    owner: str,
    prompt: str,
    resolution: Resolution,
    seed: int | None,
    image_key: str,
    audio_key: str,
    now: datetime,
    quality: Quality = Quality.STANDARD,
    image_etag: str | None = None,
    audio_etag: str | None = None,
    held: bool = False,
    audio_seconds: float | None = None,
    parallel: Parallel = "off",
    webhook_url: str | None = None,
    webhook_events: frozenset[WebhookEventType] = frozenset(),
    video_key: str | None = None,
    video_etag: str | None = None,
    audio2_key: str | None = None,
    audio2_etag: str | None = None,
    speaker_mode: SpeakerMode | None = None,
    speaker_boxes: tuple[Box, Box] | None = None,
) -> Job:
    """A pending job: enqueued now, or `held` back by admission until `admit`."""
    return Job(
        id=job_id,
        owner=owner,
        status=JobStatus.PENDING,
        stage=Stage.QUEUED,
        progress=0.0,
        prompt=prompt,
        resolution=resolution,
        seed=seed,
        image_key=image_key,
        audio_key=audio_key,
        created_at=now,
        updated_at=now,
        quality=quality,
        enqueued_at=None if held else now,
        image_etag=image_etag,
        audio_etag=audio_etag,
        audio_seconds=audio_seconds,
        parallel=parallel,
        webhook_url=webhook_url,
        webhook_events=webhook_events,
        video_key=video_key,
        video_etag=video_etag,
        audio2_key=audio2_key,
        audio2_etag=audio2_etag,
        speaker_mode=speaker_mode,
        speaker_boxes=speaker_boxes,
    )


def _next(job: Job, now: datetime, **changes: Any) -> Job:
    return replace(job, updated_at=now, version=job.version + 1, **changes)


def holds_claim(job: Job, claim_token: str) -> bool:
    """The claim token is a secret: compared in constant time, so no timing tells its prefix."""
    held = job.claim_token
    return held is not None and hmac.compare_digest(held.encode(), claim_token.encode())


def require_claim(job: Job, claim_token: str) -> None:
    if job.status is not JobStatus.PROCESSING or not holds_claim(job, claim_token):
        raise StaleClaim(f"claim token is not current for job {job.id}")


def claim(job: Job, *, agent_id: str, claim_token: str, now: datetime) -> Job:
    """Start a new attempt; progress restarts at zero for it."""
    if job.status is not JobStatus.PENDING:
        raise NotClaimable(f"job {job.id} is {job.status}, not pending")
    return _next(
        job,
        now,
        status=JobStatus.PROCESSING,
        stage=Stage.DOWNLOADING,
        progress=0.0,
        eta_seconds=None,
        attempts=job.attempts + 1,
        claim_token=claim_token,
        agent_id=agent_id,
        started_at=job.started_at or now,
        heartbeat_at=now,
    )


def report_progress(
    job: Job,
    *,
    claim_token: str,
    progress: float,
    stage: Stage,
    eta_seconds: float | None,
    now: datetime,
    speakers: SpeakerAssignment | None = None,
) -> Job:
    """A heartbeat; progress never goes down within an attempt. A two-speaker job's
    assignment, once the agent reports it, stays until another attempt reports its own."""
    require_claim(job, claim_token)
    return _next(
        job,
        now,
        progress=max(job.progress, min(progress, 99.9)),
        stage=stage,
        eta_seconds=eta_seconds,
        heartbeat_at=now,
        speakers=speakers or job.speakers,
    )


def refuse_claim(job: Job, *, max_refusals: int, now: datetime) -> Job:
    """An agent lacking what the job needs asked for it: counted, and after `max_refusals`
    such claims the job fails NO_CAPABLE_AGENT instead of circling the queue for ever."""
    if job.status is not JobStatus.PENDING:
        raise NotClaimable(f"job {job.id} is {job.status}, not pending")
    refused = _next(job, now, refusals=job.refusals + 1)
    if refused.refusals < max_refusals:
        return refused
    needs = ", ".join(sorted(need.value for need in job.needs))
    return _failed(
        refused,
        now,
        FailureCode.NO_CAPABLE_AGENT,
        f"no agent that took this job could make it (it needs: {needs}); "
        f"gave up after {refused.refusals} refused claims",
    )


def complete(
    job: Job,
    *,
    claim_token: str,
    result: ResultMetadata,
    result_key: str,
    now: datetime,
    retention: timedelta,
) -> Job:
    require_claim(job, claim_token)
    return replace(_completed(job, result, result_key, now, retention), heartbeat_at=now)


def _completed(
    job: Job, result: ResultMetadata, result_key: str, now: datetime, retention: timedelta
) -> Job:
    return _next(
        job,
        now,
        status=JobStatus.COMPLETED,
        stage=Stage.DONE,
        progress=100.0,
        eta_seconds=0.0,
        completed_at=now,
        expires_at=now + retention,
        result_key=result_key,
        result=result,
        speakers=result.speakers or job.speakers,
    )


def fail(
    job: Job,
    *,
    claim_token: str,
    code: FailureCode,
    message: str,
    retryable: bool,
    max_attempts: int,
    now: datetime,
) -> Job:
    """Retryable failures go back to pending while attempts remain; the rest are final.

    A job handed back by an agent that is shutting down always goes back: the pod was
    stopped, the job did nothing wrong, so it is not held against `max_attempts`.
    """
    require_claim(job, claim_token)
    released = code is FailureCode.AGENT_SHUTDOWN
    if released or (retryable and job.attempts < max_attempts):
        return _back_to_queue(job, now, code, message)
    if retryable:
        message = f"{message} (gave up after {job.attempts} attempts)"
    return _failed(job, now, code, message)


def _back_to_queue(job: Job, now: datetime, code: FailureCode, message: str) -> Job:
    return _next(
        job,
        now,
        status=JobStatus.PENDING,
        stage=Stage.QUEUED,
        progress=0.0,
        eta_seconds=None,
        claim_token=None,
        agent_id=None,
        enqueued_at=now,
        error_code=code,
        error_message=message,
    )


def _failed(job: Job, now: datetime, code: FailureCode, message: str) -> Job:
    return _next(
        job,
        now,
        status=JobStatus.FAILED,
        eta_seconds=None,
        error_code=code,
        error_message=message,
    )


def requeue_lost(job: Job, *, heartbeat_before: datetime, max_attempts: int, now: datetime) -> Job:
    """The agent went silent: try again elsewhere, or give up after `max_attempts`."""
    if job.status is not JobStatus.PROCESSING:
        raise JobStateError(f"job {job.id} is {job.status}, not processing")
    if job.claim_token is None:
        raise JobStateError(f"job {job.id} is split: its segments have agents, it has none")
    if job.heartbeat_at is not None and job.heartbeat_at >= heartbeat_before:
        raise JobStateError(f"job {job.id} has a recent heartbeat")
    message = f"the GPU agent stopped responding (attempt {job.attempts} of {max_attempts})"
    if job.attempts < max_attempts:
        return _back_to_queue(job, now, FailureCode.MAX_ATTEMPTS_EXCEEDED, message)
    return _failed(
        job,
        now,
        FailureCode.MAX_ATTEMPTS_EXCEEDED,
        f"the GPU agent stopped responding {job.attempts} times; giving up",
    )


def cancel(job: Job, *, now: datetime) -> Job:
    """Cancel a pending or processing job.

    A processing job keeps its claim token, so the agent's next heartbeat is answered
    `cancel_requested` (see `cancel_requested`) while `complete` stays refused.
    """
    if job.status not in (JobStatus.PENDING, JobStatus.PROCESSING):
        raise JobStateError(f"job {job.id} is already {job.status}")
    return _next(job, now, status=JobStatus.CANCELLED, stage=Stage.CANCELLED, eta_seconds=None)


def is_reclaim(job: Job, agent_id: str) -> bool:
    """The agent that holds the job claims it again: its first reply was lost in transit."""
    return job.status is JobStatus.PROCESSING and job.agent_id == agent_id


def finished_by(job: Job, claim_token: str) -> bool:
    """The holder of this claim already completed or failed the job: a repeat is a no-op."""
    return job.status in (JobStatus.COMPLETED, JobStatus.FAILED) and holds_claim(job, claim_token)


def cancel_requested(job: Job, claim_token: str) -> bool:
    """True when the caller holds the claim of a job that was cancelled under it."""
    return job.status is JobStatus.CANCELLED and holds_claim(job, claim_token)


def mark_enqueued(job: Job, *, now: datetime) -> Job:
    if job.status is not JobStatus.PENDING:
        raise JobStateError(f"job {job.id} is {job.status}, not pending")
    return _next(job, now, enqueued_at=now)


def admit(job: Job, *, now: datetime) -> Job:
    """A held job enters the queue; only once, so two racing top-ups send one message."""
    if job.status is not JobStatus.PENDING or job.enqueued_at is not None:
        raise JobStateError(f"job {job.id} is not held back")
    return _next(job, now, enqueued_at=now)


def expire(job: Job, *, now: datetime) -> Job:
    if job.status is not JobStatus.COMPLETED or job.expires_at is None or job.expires_at > now:
        raise JobStateError(f"job {job.id} has not reached its expiry")
    return _next(job, now, status=JobStatus.EXPIRED, result_key=None)


def mark_inputs_deleted(job: Job, *, now: datetime) -> Job:
    if not job.status.is_terminal:
        raise JobStateError(f"job {job.id} is still {job.status}")
    return _next(job, now, inputs_deleted=True)


def record_plan(job: Job, *, claim_token: str, plan: SegmentPlan, now: datetime) -> Job:
    """The planner's cut points; registering again (a lost reply) replaces them."""
    require_claim(job, claim_token)
    if not job.wants_plan or plan.attempt != job.attempts:
        raise JobStateError(f"job {job.id} is not being planned by this attempt")
    return _next(job, now, plan=plan, heartbeat_at=now)


def split(job: Job, *, claim_token: str, now: datetime) -> Job:
    """Commit the registered plan: the planner lets go, the segments take over."""
    require_claim(job, claim_token)
    if not job.wants_plan or job.plan is None or job.plan.attempt != job.attempts:
        raise JobStateError(f"job {job.id} has no plan registered by this attempt")
    return _next(
        job,
        now,
        stage=Stage.GENERATING,
        progress=0.0,
        eta_seconds=None,
        claim_token=None,
        agent_id=None,
        heartbeat_at=now,
        segment_count=len(job.plan.bounds),
    )


def _require_split(job: Job) -> None:
    if not job.is_split or job.status is not JobStatus.PROCESSING:
        raise JobStateError(f"job {job.id} is {job.status}, not a running split job")


def complete_split(
    job: Job, *, result: ResultMetadata, result_key: str, now: datetime, retention: timedelta
) -> Job:
    """The stitch is done: the parent publishes its result, once (compare-and-swap)."""
    _require_split(job)
    return _completed(job, result, result_key, now, retention)


def fail_split(job: Job, *, code: FailureCode, message: str, now: datetime) -> Job:
    """A segment or the stitch failed for good: so does the job."""
    _require_split(job)
    return _failed(job, now, code, message)
