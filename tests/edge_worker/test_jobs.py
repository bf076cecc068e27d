"""The job state machine: every transition, every refusal."""

from datetime import UTC, datetime, timedelta

import pytest

from contracts import FailureCode, JobStatus, Resolution, ResultMetadata, Stage
from edge_worker.domain import jobs

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
RESULT = ResultMetadata(
    size_bytes=10, duration_seconds=1.0, width=720, height=900, engine="preview"
)


def pending(*, held: bool = False) -> jobs.Job:
    return jobs.new_job(
        job_id="j1",
        owner="o1",
        prompt="hello",
        resolution=Resolution.P480,
        seed=7,
        image_key="inputs/j1/image.png",
        audio_key="inputs/j1/audio.wav",
        now=T0,
        held=held,
    )


def claimed(token: str = "tok") -> jobs.Job:
    return jobs.claim(pending(), agent_id="a1", claim_token=token, now=T0 + timedelta(seconds=1))


def test_only_the_current_claim_token_holds_the_claim() -> None:
    assert jobs.holds_claim(claimed("tok"), "tok")
    assert not jobs.holds_claim(claimed("tok"), "to")
    assert not jobs.holds_claim(pending(), "")  # no claim: not even an empty token holds it


def test_new_job_is_pending_and_queued() -> None:
    job = pending()
    assert (job.status, job.stage, job.progress, job.attempts, job.version) == (
        JobStatus.PENDING,
        Stage.QUEUED,
        0.0,
        0,
        0,
    )


def test_a_job_meters_its_audio_then_its_video_gpu_time_and_engine_at_complete() -> None:
    job = jobs.new_job(
        job_id="j2",
        owner="o1",
        prompt="hello",
        resolution=Resolution.P480,
        seed=None,
        image_key="inputs/j2/image.png",
        audio_key="inputs/j2/audio.wav",
        now=T0,
        audio_seconds=12.5,
    )
    assert (job.audio_seconds, job.video_seconds, job.gpu_seconds, job.engine) == (
        12.5,
        None,
        None,
        None,
    )
    ran = jobs.claim(job, agent_id="a1", claim_token="tok", now=T0)
    done = jobs.complete(
        ran,
        claim_token="tok",
        result=RESULT.model_copy(update={"gpu_seconds": 30.25}),
        result_key="videos/j2/1.mp4",
        now=T0 + timedelta(seconds=40),
        retention=timedelta(hours=1),
    )
    assert (done.audio_seconds, done.video_seconds, done.gpu_seconds, done.engine) == (
        12.5,
        1.0,
        30.25,
        "preview",
    )


def test_claim_starts_an_attempt_and_bumps_version() -> None:
    job = claimed()
    assert job.status is JobStatus.PROCESSING
    assert job.stage is Stage.DOWNLOADING
    assert job.attempts == 1
    assert job.claim_token == "tok"
    assert job.started_at == job.heartbeat_at == T0 + timedelta(seconds=1)
    assert job.version == 1


@pytest.mark.parametrize("status", [s for s in JobStatus if s is not JobStatus.PENDING])
def test_only_pending_jobs_are_claimable(status: JobStatus) -> None:
    from dataclasses import replace

    with pytest.raises(jobs.NotClaimable):
        jobs.claim(replace(pending(), status=status), agent_id="a", claim_token="t", now=T0)


def test_progress_is_monotonic_and_below_100_until_complete() -> None:
    job = jobs.report_progress(
        claimed(), claim_token="tok", progress=40, stage=Stage.GENERATING, eta_seconds=12, now=T0
    )
    job = jobs.report_progress(
        job, claim_token="tok", progress=10, stage=Stage.GENERATING, eta_seconds=11, now=T0
    )
    assert job.progress == 40
    assert job.eta_seconds == 11
    job = jobs.report_progress(
        job, claim_token="tok", progress=100, stage=Stage.UPLOADING, eta_seconds=1, now=T0
    )
    assert job.progress < 100
    assert job.stage is Stage.UPLOADING


def test_stale_token_is_refused_everywhere() -> None:
    job = claimed("current")
    with pytest.raises(jobs.StaleClaim):
        jobs.report_progress(
            job, claim_token="old", progress=1, stage=Stage.GENERATING, eta_seconds=None, now=T0
        )
    with pytest.raises(jobs.StaleClaim):
        jobs.complete(
            job,
            claim_token="old",
            result=RESULT,
            result_key="videos/j1.mp4",
            now=T0,
            retention=timedelta(hours=6),
        )
    with pytest.raises(jobs.StaleClaim):
        jobs.fail(
            job,
            claim_token="old",
            code=FailureCode.GENERATION_FAILED,
            message="x",
            retryable=False,
            max_attempts=3,
            now=T0,
        )


def test_a_pending_job_has_no_current_claim() -> None:
    with pytest.raises(jobs.StaleClaim):
        jobs.report_progress(
            pending(), claim_token="", progress=1, stage=Stage.GENERATING, eta_seconds=None, now=T0
        )


def test_complete_sets_result_and_expiry() -> None:
    done = jobs.complete(
        claimed(),
        claim_token="tok",
        result=RESULT,
        result_key="videos/j1.mp4",
        now=T0,
        retention=timedelta(hours=6),
    )
    assert done.status is JobStatus.COMPLETED
    assert done.stage is Stage.DONE
    assert done.progress == 100
    assert done.expires_at == T0 + timedelta(hours=6)
    assert done.result == RESULT
    assert done.claim_token == "tok"


def test_non_retryable_failure_is_final() -> None:
    failed = jobs.fail(
        claimed(),
        claim_token="tok",
        code=FailureCode.INVALID_INPUT,
        message="audio cannot be decoded",
        retryable=False,
        max_attempts=3,
        now=T0,
    )
    assert failed.status is JobStatus.FAILED
    assert failed.error_code is FailureCode.INVALID_INPUT
    assert failed.error_message == "audio cannot be decoded"
    assert failed.completed_at is None  # only completed jobs have completed_at


def test_retryable_failure_requeues_while_attempts_remain() -> None:
    again = jobs.fail(
        claimed(),
        claim_token="tok",
        code=FailureCode.STORAGE_ERROR,
        message="upload failed",
        retryable=True,
        max_attempts=2,
        now=T0,
    )
    assert again.status is JobStatus.PENDING
    assert again.stage is Stage.QUEUED
    assert again.progress == 0
    assert again.claim_token is None
    second = jobs.claim(again, agent_id="a2", claim_token="tok2", now=T0)
    assert second.attempts == 2
    final = jobs.fail(
        second,
        claim_token="tok2",
        code=FailureCode.STORAGE_ERROR,
        message="upload failed",
        retryable=True,
        max_attempts=2,
        now=T0,
    )
    assert final.status is JobStatus.FAILED
    assert "gave up after 2 attempts" in (final.error_message or "")


def test_terminal_statuses() -> None:
    assert {s for s in JobStatus if s.is_terminal} == {
        JobStatus.COMPLETED,
        JobStatus.FAILED,
        JobStatus.CANCELLED,
        JobStatus.EXPIRED,
    }


def test_lost_agent_requeues_then_fails_after_max_attempts() -> None:
    job = claimed()
    cutoff = T0 + timedelta(minutes=5)
    again = jobs.requeue_lost(job, heartbeat_before=cutoff, max_attempts=2, now=cutoff)
    assert again.status is JobStatus.PENDING
    assert again.claim_token is None
    assert again.enqueued_at == cutoff
    second = jobs.claim(again, agent_id="a2", claim_token="t2", now=cutoff)
    lost = jobs.requeue_lost(
        second, heartbeat_before=cutoff + timedelta(minutes=5), max_attempts=2, now=cutoff
    )
    assert lost.status is JobStatus.FAILED
    assert lost.error_code is FailureCode.MAX_ATTEMPTS_EXCEEDED
    assert "2 times" in (lost.error_message or "")


def test_a_job_with_a_recent_heartbeat_is_not_lost() -> None:
    job = claimed()
    with pytest.raises(jobs.JobStateError):
        jobs.requeue_lost(job, heartbeat_before=T0, max_attempts=3, now=T0)
    with pytest.raises(jobs.JobStateError):
        jobs.requeue_lost(pending(), heartbeat_before=T0, max_attempts=3, now=T0)


def test_cancel_pending_and_processing() -> None:
    cancelled = jobs.cancel(pending(), now=T0)
    assert (cancelled.status, cancelled.stage) == (JobStatus.CANCELLED, Stage.CANCELLED)
    assert cancelled.completed_at is None
    running = jobs.cancel(claimed("tok"), now=T0)
    assert (running.stage, running.completed_at) == (Stage.CANCELLED, None)
    assert jobs.cancel_requested(running, "tok")
    assert not jobs.cancel_requested(running, "other")
    assert not jobs.cancel_requested(claimed("tok"), "tok")
    with pytest.raises(jobs.StaleClaim):
        jobs.complete(
            running,
            claim_token="tok",
            result=RESULT,
            result_key="videos/j1.mp4",
            now=T0,
            retention=timedelta(hours=6),
        )
    with pytest.raises(jobs.JobStateError):
        jobs.cancel(cancelled, now=T0)


def test_expire_only_completed_jobs_past_their_expiry() -> None:
    done = jobs.complete(
        claimed(),
        claim_token="tok",
        result=RESULT,
        result_key="videos/j1.mp4",
        now=T0,
        retention=timedelta(hours=6),
    )
    with pytest.raises(jobs.JobStateError):
        jobs.expire(done, now=T0 + timedelta(hours=5))
    expired = jobs.expire(done, now=T0 + timedelta(hours=6))
    assert expired.status is JobStatus.EXPIRED
    assert expired.result_key is None
    with pytest.raises(jobs.JobStateError):
        jobs.expire(pending(), now=T0)


def test_enqueue_and_input_cleanup_bookkeeping() -> None:
    job = pending()
    assert job.enqueued_at == T0
    assert jobs.mark_enqueued(job, now=T0 + timedelta(hours=1)).enqueued_at == T0 + timedelta(
        hours=1
    )
    with pytest.raises(jobs.JobStateError):
        jobs.mark_enqueued(claimed(), now=T0)
    with pytest.raises(jobs.JobStateError):
        jobs.mark_inputs_deleted(pending(), now=T0)
    cleaned = jobs.mark_inputs_deleted(jobs.cancel(job, now=T0), now=T0)
    assert cleaned.inputs_deleted
    assert cleaned.input_keys == ["inputs/j1/image.png", "inputs/j1/audio.wav"]


def test_repeats_by_the_claim_holder_are_recognised() -> None:
    job = claimed("tok")
    assert jobs.is_reclaim(job, "a1")
    assert not jobs.is_reclaim(job, "someone-else")
    assert not jobs.is_reclaim(pending(), "a1")
    assert not jobs.finished_by(job, "tok")
    done = jobs.complete(
        job,
        claim_token="tok",
        result=RESULT,
        result_key="videos/j1/1.mp4",
        now=T0,
        retention=timedelta(hours=6),
    )
    assert jobs.finished_by(done, "tok")
    assert not jobs.finished_by(done, "other")


def test_a_job_handed_back_by_a_stopping_agent_always_returns_to_the_queue() -> None:
    job = jobs.claim(pending(), agent_id="a", claim_token="t", now=T0)
    for attempt in range(5):
        job = jobs.fail(
            job,
            claim_token=f"t{attempt}" if attempt else "t",
            code=FailureCode.AGENT_SHUTDOWN,
            message="agent shutting down",
            retryable=True,
            max_attempts=1,
            now=T0,
        )
        assert job.status is JobStatus.PENDING
        job = jobs.claim(job, agent_id="a", claim_token=f"t{attempt + 1}", now=T0)
    assert job.attempts == 6


def test_a_held_job_is_admitted_once() -> None:
    held = pending(held=True)
    assert (held.status, held.enqueued_at) == (JobStatus.PENDING, None)
    admitted = jobs.admit(held, now=T0 + timedelta(seconds=1))
    assert (admitted.enqueued_at, admitted.version) == (T0 + timedelta(seconds=1), 1)
    with pytest.raises(jobs.JobStateError):
        jobs.admit(admitted, now=T0)
    with pytest.raises(jobs.JobStateError):
        jobs.admit(jobs.cancel(held, now=T0), now=T0)
