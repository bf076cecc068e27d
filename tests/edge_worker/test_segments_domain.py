"""The fan-out rules as plain functions: the split job's transitions, its progress, ETA and
failure message, and what the edge does next in each state."""

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from contracts import FailureCode, JobStatus, Resolution, ResultMetadata, Stage
from contracts.jobs import Parallel
from edge_worker.domain import jobs, segments
from edge_worker.domain.jobs import Job, SegmentPlan

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
PLAN = SegmentPlan(attempt=1, audio_seconds=60.0, bounds=((0.0, 20.0), (20.0, 60.0)))
KEYS = ["a0.wav", "a1.wav"]
RESULT = ResultMetadata(
    size_bytes=10, duration_seconds=60.0, width=64, height=64, engine="preview", gpu_seconds=3.0
)


def parent(parallel: Parallel = "auto") -> Job:
    job = jobs.new_job(
        job_id="p",
        owner="o",
        prompt="talk",
        resolution=Resolution.P480,
        seed=None,
        image_key="i.png",
        audio_key="a.wav",
        now=T0,
        parallel=parallel,
    )
    return jobs.claim(job, agent_id="planner", claim_token="tok", now=T0)


def split_parent() -> Job:
    planned = jobs.record_plan(parent(), claim_token="tok", plan=PLAN, now=T0)
    return jobs.split(planned, claim_token="tok", now=T0)


def test_only_the_current_planning_attempt_records_and_commits_a_plan() -> None:
    with pytest.raises(jobs.JobStateError):
        jobs.record_plan(
            parent(), claim_token="tok", plan=dataclasses.replace(PLAN, attempt=2), now=T0
        )
    with pytest.raises(jobs.JobStateError):
        jobs.record_plan(parent("off"), claim_token="tok", plan=PLAN, now=T0)
    with pytest.raises(jobs.StaleClaim):
        jobs.record_plan(parent(), claim_token="other", plan=PLAN, now=T0)
    with pytest.raises(jobs.JobStateError):
        jobs.split(parent(), claim_token="tok", now=T0)  # nothing registered
    job = split_parent()
    assert (job.status, job.stage, job.claim_token, job.segment_count) == (
        JobStatus.PROCESSING,
        Stage.GENERATING,
        None,
        2,
    )
    assert job.is_split and not job.wants_plan


def test_a_split_job_is_never_lost_and_ends_only_as_a_split_job() -> None:
    job = split_parent()
    with pytest.raises(jobs.JobStateError):
        jobs.requeue_lost(job, heartbeat_before=T0 + timedelta(hours=1), max_attempts=3, now=T0)
    for change in (
        lambda j: jobs.complete_split(
            j, result=RESULT, result_key="k", now=T0, retention=timedelta(hours=6)
        ),
        lambda j: jobs.fail_split(j, code=FailureCode.TIMEOUT, message="m", now=T0),
    ):
        with pytest.raises(jobs.JobStateError):
            change(parent())  # not split
        ended = change(job)
        assert ended.status.is_terminal
        with pytest.raises(jobs.JobStateError):
            change(ended)  # once


def test_next_step_in_each_state() -> None:
    job = split_parent()
    none = segments.Children.of([])
    assert segments.next_step(job, none) == segments.NextStep(create_segments=(0, 1))
    assert segments.next_step(parent(), none) == segments.NextStep()  # not split yet
    first, second = segments.new_segments(job, [0, 1], KEYS, T0)
    running = segments.Children.of([second, first])
    assert [s.segment_index for s in running.segments] == [0, 1]
    assert segments.next_step(job, running) == segments.NextStep()
    done = [dataclasses.replace(s, status=JobStatus.COMPLETED) for s in (first, second)]
    assert segments.next_step(job, segments.Children.of(done)).create_stitch
    stitch = segments.new_stitch(job, T0)
    assert (stitch.segment_index, stitch.segment_end_seconds) == (2, 60.0)
    assert segments.next_step(job, segments.Children.of([*done, stitch])) == segments.NextStep()
    stitched = dataclasses.replace(stitch, status=JobStatus.COMPLETED)
    step = segments.next_step(job, segments.Children.of([*done, stitched]))
    assert step.complete_with == stitched
    failed = dataclasses.replace(stitch, status=JobStatus.FAILED, error_message="bad seam")
    step = segments.next_step(job, segments.Children.of([*done, failed]))
    assert step.fail == (FailureCode.GENERATION_FAILED, "stitching the segments: bad seam")
    cancelled = dataclasses.replace(job, status=JobStatus.CANCELLED)
    assert segments.next_step(cancelled, running).cancel == (first, second)


def test_progress_stage_and_eta_follow_the_segments() -> None:
    job = split_parent()
    first, second = segments.new_segments(job, [0, 1], KEYS, T0)
    # A third of the audio half done, the rest waiting: 1/6 of 95 %.
    half = dataclasses.replace(first, status=JobStatus.PROCESSING, progress=50.0, eta_seconds=10.0)
    children = segments.Children.of([half, second])
    assert segments.progress(children) == pytest.approx(100 / 6 * 0.95)
    assert segments.stage(children) is Stage.GENERATING
    # 10 s for 10 s of audio left: the waiting 40 s starts in 10 s and takes 40 s.
    assert segments.eta_seconds(children) == pytest.approx(50.0)
    assert segments.eta_seconds(segments.Children.of([first, second])) is None
    stitch = dataclasses.replace(segments.new_stitch(job, T0), eta_seconds=4.0)
    stitching = segments.Children.of([first, second, stitch])
    assert (segments.stage(stitching), segments.eta_seconds(stitching)) == (Stage.ENCODING, 4.0)
    assert segments.metered(segments.Children.of([first])) is None
