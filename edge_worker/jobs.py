"""The job state machine: pending -> processing -> completed | failed (or back to pending).

Plain Python: no HTTP, no storage. Every transition returns a new `Job` with `version`
bumped, so stores can apply it as a compare-and-swap and concurrent writers cannot both win.
"""

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from contracts import FailureCode, JobStatus, Resolution, ResultMetadata, Stage


class JobStateError(Exception):
    """A transition that the job's current state does not allow."""


class NotClaimable(JobStateError):
    pass


class StaleClaim(JobStateError):
    """The caller's claim token is not the job's current one: a newer attempt owns the job."""


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
    version: int = 0


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
) -> Job:
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
    )


def _next(job: Job, now: datetime, **changes: object) -> Job:
    return replace(job, updated_at=now, version=job.version + 1, **changes)


def _require_claim(job: Job, claim_token: str) -> None:
    if job.status is not JobStatus.PROCESSING or job.claim_token != claim_token:
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
) -> Job:
    """A heartbeat; progress never goes down within an attempt."""
    _require_claim(job, claim_token)
    return _next(
        job,
        now,
        progress=max(job.progress, min(progress, 99.9)),
        stage=stage,
        eta_seconds=eta_seconds,
        heartbeat_at=now,
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
    _require_claim(job, claim_token)
    return _next(
        job,
        now,
        status=JobStatus.COMPLETED,
        stage=Stage.DONE,
        progress=100.0,
        eta_seconds=0.0,
        completed_at=now,
        expires_at=now + retention,
        heartbeat_at=now,
        result_key=result_key,
        result=result,
        claim_token=None,
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
    """Retryable failures go back to pending while attempts remain; the rest are final."""
    _require_claim(job, claim_token)
    if retryable and job.attempts < max_attempts:
        return _next(
            job,
            now,
            status=JobStatus.PENDING,
            stage=Stage.QUEUED,
            progress=0.0,
            eta_seconds=None,
            claim_token=None,
            agent_id=None,
            error_code=code,
            error_message=message,
        )
    if retryable:
        message = f"{message} (gave up after {job.attempts} attempts)"
    return _next(
        job,
        now,
        status=JobStatus.FAILED,
        eta_seconds=None,
        completed_at=now,
        claim_token=None,
        error_code=code,
        error_message=message,
    )
