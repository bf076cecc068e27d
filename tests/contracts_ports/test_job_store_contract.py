"""The JobStore contract: the SQL job store behaves alike on SQLite and on real local D1."""

import base64
import dataclasses
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from contracts import (
    BoxSource,
    FailureCode,
    JobStatus,
    Quality,
    Resolution,
    ResultMetadata,
    SpeakerAssignment,
    SpeakerMode,
    Stage,
)
from contracts.webhooks import WebhookEventType
from edge_worker.domain import jobs
from edge_worker.domain.idempotency import IdempotencyRecord, new_record
from edge_worker.domain.jobs import Job, SegmentPlan
from edge_worker.ports import JobStore, SweepKind
from tests.conftest import run

T0 = datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
RESULT = ResultMetadata(
    size_bytes=1_234_567,
    duration_seconds=61.04,
    width=1280,
    height=720,
    engine="preview",
    gpu_seconds=187.25,
)


def make_job(job_id: str, *, owner: str = "owner-a", created: datetime = T0) -> Job:
    return jobs.new_job(
        job_id=job_id,
        owner=owner,
        prompt="a person talking, soft light",
        resolution=Resolution.P480,
        seed=7,
        image_key=f"inputs/{job_id}/image.png",
        audio_key=f"inputs/{job_id}/audio.wav",
        now=created,
    )


def every_field_set(job_id: str) -> Job:
    """A job whose every field differs from its default, so no dropped column can hide."""
    job = Job(
        id=job_id,
        owner="owner-x",
        status=JobStatus.PROCESSING,
        stage=Stage.ENCODING,
        progress=73.125,
        prompt="unicode ✓ prompt with 'quotes' and \"double\" and ; -- sql-ish",
        resolution=Resolution.P720,
        seed=2**40 + 3,
        image_key=f"inputs/{job_id}/image.jpg",
        audio_key=f"inputs/{job_id}/audio.mp3",
        created_at=T0,
        updated_at=T0 + timedelta(microseconds=1),
        quality=Quality.FAST,
        started_at=T0 + timedelta(microseconds=2),
        completed_at=T0 + timedelta(microseconds=3),
        expires_at=T0 + timedelta(hours=6, microseconds=4),
        heartbeat_at=T0 + timedelta(microseconds=5),
        attempts=2,
        error_code=FailureCode.TIMEOUT,
        error_message="previous attempt timed out",
        claim_token="claim-xyz",
        agent_id="agent-7",
        eta_seconds=4.5,
        result_key=f"videos/{job_id}/2.mp4",
        result=RESULT,
        enqueued_at=T0 + timedelta(microseconds=6),
        inputs_deleted=True,
        image_etag='"5d41402abc4b2a76b9719d911017c592"',
        audio_etag='"7d793037a0760186574b0282f2f435e7-3"',
        audio_seconds=61.5,
        parallel=4,
        parent_id="job-parent",
        task="segment",
        segment_index=3,
        segment_count=5,
        segment_start_seconds=60.04,
        segment_end_seconds=118.2,
        plan=SegmentPlan(attempt=2, audio_seconds=61.5, bounds=((0.0, 30.5), (30.5, 61.5))),
        webhook_url="https://hooks.example.com/avatar?tenant=7",
        webhook_events=frozenset({WebhookEventType.PROGRESS, WebhookEventType.COMPLETED}),
        video_key=f"inputs/{job_id}/video.webm",
        video_etag='"v-etag"',
        audio2_key=f"inputs/{job_id}/audio2.wav",
        audio2_etag='"a2-etag"',
        speaker_mode=SpeakerMode.SIMULTANEOUS,
        speaker_boxes=((0, 1, 10, 11), (12, 0, 30, 11)),
        speakers=SpeakerAssignment(boxes=((0, 0, 5, 5), (5, 0, 10, 5)), source=BoxSource.HALVES),
        refusals=3,
        version=9,
    )
    for field in dataclasses.fields(Job):
        if field.default is not dataclasses.MISSING:
            assert getattr(job, field.name) != field.default, field.name
    return job


def claimed(job: Job, now: datetime) -> Job:
    return jobs.claim(job, agent_id="agent-1", claim_token=f"tok-{job.id}", now=now)


def completed(job: Job, now: datetime) -> Job:
    job = claimed(job, now)
    return jobs.complete(
        job,
        claim_token=f"tok-{job.id}",
        result=RESULT,
        result_key=f"videos/{job.id}/1.mp4",
        now=now,
        retention=timedelta(hours=6),
    )


def insert(store: JobStore, *items: Job) -> None:
    for job in items:
        run(store.insert(job))


# --- insert / get / replace ---------------------------------------------------------------


def test_every_field_round_trips(job_store: JobStore) -> None:
    job = every_field_set("job-all")
    insert(job_store, job)
    got = run(job_store.get("job-all"))
    assert got == job
    for field in dataclasses.fields(Job):
        value = getattr(got, field.name)
        if isinstance(value, datetime):
            assert value.utcoffset() == timedelta(0), field.name


def test_times_in_other_zones_come_back_equal_in_utc(job_store: JobStore) -> None:
    ist = timezone(timedelta(hours=5, minutes=30))
    local = datetime(2024, 5, 1, 17, 30, 0, 5, tzinfo=ist)
    insert(job_store, make_job("job-tz", created=local))
    got = run(job_store.get("job-tz"))
    assert got is not None and got.created_at == local and got.created_at.tzinfo == UTC


def test_new_job_round_trips_with_its_empty_fields(job_store: JobStore) -> None:
    job = make_job("job-new")
    insert(job_store, job)
    got = run(job_store.get("job-new"))
    assert got == job
    assert got is not None and got.result is None and got.started_at is None
    unseeded = dataclasses.replace(make_job("job-unseeded"), seed=None)
    insert(job_store, unseeded)
    assert run(job_store.get("job-unseeded")) == unseeded


def test_unknown_job_is_none(job_store: JobStore) -> None:
    assert run(job_store.get("no-such-job")) is None


def test_duplicate_insert_is_refused_and_keeps_the_original(job_store: JobStore) -> None:
    original = make_job("job-dup")
    insert(job_store, original)
    with pytest.raises(Exception):
        run(job_store.insert(dataclasses.replace(original, prompt="impostor")))
    assert run(job_store.get("job-dup")) == original


def test_replace_is_a_compare_and_swap_on_the_version(job_store: JobStore) -> None:
    job = make_job("job-cas")
    insert(job_store, job)
    first = claimed(job, T0 + timedelta(seconds=1))
    assert run(job_store.replace(first, expected_version=job.version))
    # A second writer that read the same version loses and changes nothing.
    rival = jobs.cancel(job, now=T0 + timedelta(seconds=2))
    assert not run(job_store.replace(rival, expected_version=job.version))
    assert run(job_store.get("job-cas")) == first
    # Replaying the won write with its now-stale version, or skipping ahead, fails too.
    assert not run(job_store.replace(first, expected_version=job.version))
    assert not run(job_store.replace(first, expected_version=first.version + 4))
    assert run(job_store.get("job-cas")) == first


def test_replace_of_an_unknown_job_fails(job_store: JobStore) -> None:
    assert not run(job_store.replace(make_job("ghost"), expected_version=0))
    assert run(job_store.get("ghost")) is None


def test_replace_touches_only_its_own_row(job_store: JobStore) -> None:
    one, two = make_job("job-1"), make_job("job-2")
    insert(job_store, one, two)
    assert run(job_store.replace(claimed(one, T0), expected_version=0))
    assert run(job_store.get("job-2")) == two


# --- queue position ------------------------------------------------------------------------


def test_count_pending_before_is_fifo_by_creation_then_id(job_store: JobStore) -> None:
    tie = T0 + timedelta(seconds=5)
    order = [
        make_job("z-first", created=T0),
        make_job("a-second", created=T0 + timedelta(microseconds=1)),
        make_job("m-tie-1", created=tie),
        make_job("m-tie-2", created=tie, owner="owner-b"),
        make_job("b-last", created=T0 + timedelta(minutes=1)),
    ]
    insert(job_store, *reversed(order))
    assert [run(job_store.count_pending_before(job)) for job in order] == [0, 1, 2, 3, 4]


def test_count_pending_before_counts_only_waiting_jobs_of_every_owner(
    job_store: JobStore,
) -> None:
    early = [make_job(f"early-{n}", created=T0 + timedelta(seconds=n)) for n in range(5)]
    insert(job_store, *early)
    # One processing, one completed, one failed: none of them waits in the queue.
    assert run(job_store.replace(claimed(early[0], T0), expected_version=0))
    insert(job_store, completed(make_job("done-early"), T0))
    failed = jobs.fail(
        claimed(early[1], T0),
        claim_token="tok-early-1",
        code=FailureCode.GENERATION_FAILED,
        message="boom",
        retryable=False,
        max_attempts=3,
        now=T0,
    )
    assert run(job_store.replace(failed, expected_version=0))
    insert(job_store, make_job("other-owner", owner="owner-b", created=T0 + timedelta(seconds=3)))
    me = make_job("me", created=T0 + timedelta(minutes=1))
    insert(job_store, me)
    # early-2, early-3, other-owner (one queue for all), early-4
    assert run(job_store.count_pending_before(me)) == 4
    assert run(job_store.count_pending_before(early[2])) == 0
    # A job that is not stored yet is placed among the stored ones.
    assert run(job_store.count_pending_before(make_job("probe", created=T0))) == 0


# --- listing ---------------------------------------------------------------------------------


def test_list_for_owner_pages_newest_first_and_hides_other_owners(job_store: JobStore) -> None:
    mine = [make_job(f"a-{n}", created=T0 + timedelta(seconds=n)) for n in range(5)]
    tie = T0 + timedelta(minutes=1)
    mine += [make_job("a-tie-x", created=tie), make_job("a-tie-y", created=tie)]
    older = make_job("b-old", owner="owner-b", created=T0 - timedelta(seconds=1))
    insert(job_store, *mine, make_job("b-0", owner="owner-b", created=tie), older)
    expected = [j.id for j in sorted(mine, key=lambda j: (j.created_at, j.id), reverse=True)]

    seen: list[str] = []
    cursor: str | None = None
    while True:
        page = run(job_store.list_for_owner("owner-a", 3, cursor))
        assert len(page.jobs) <= 3
        seen += [job.id for job in page.jobs]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == expected
    assert run(job_store.list_for_owner("owner-a", 7, None)).next_cursor is None
    assert run(job_store.list_for_owner("nobody", 3, None)).jobs == []
    # Another owner's cursor still only ever yields the caller's jobs.
    first = run(job_store.list_for_owner("owner-a", 2, None))
    assert first.next_cursor is not None
    foreign = run(job_store.list_for_owner("owner-b", 100, first.next_cursor))
    assert [job.id for job in foreign.jobs] == ["b-old"]


def test_a_page_that_ends_the_list_has_no_cursor(job_store: JobStore) -> None:
    insert(job_store, *(make_job(f"j-{n}", created=T0 + timedelta(seconds=n)) for n in range(6)))
    first = run(job_store.list_for_owner("owner-a", 3, None))
    assert [job.id for job in first.jobs] == ["j-5", "j-4", "j-3"]
    assert first.next_cursor is not None and re.fullmatch(r"[A-Za-z0-9_=-]+", first.next_cursor)
    second = run(job_store.list_for_owner("owner-a", 3, first.next_cursor))
    assert [job.id for job in second.jobs] == ["j-2", "j-1", "j-0"]
    assert second.next_cursor is None


def test_list_for_owner_filters_on_statuses_across_pages(job_store: JobStore) -> None:
    made = [make_job(f"s-{n}", created=T0 + timedelta(seconds=n)) for n in range(7)]
    insert(job_store, *made, make_job("b-pending", owner="owner-b", created=T0))
    for job in made[1::3]:  # s-1 and s-4 are processing
        claimed = jobs.claim(job, agent_id="a", claim_token="t", now=T0 + timedelta(minutes=1))
        assert run(job_store.replace(claimed, expected_version=job.version))
    for job in made[2::3]:  # s-2 and s-5 are cancelled
        cancelled = jobs.cancel(job, now=T0 + timedelta(minutes=1))
        assert run(job_store.replace(cancelled, expected_version=job.version))

    def listed(*statuses: JobStatus) -> list[str]:
        seen: list[str] = []
        cursor: str | None = None
        while True:
            page = run(job_store.list_for_owner("owner-a", 2, cursor, frozenset(statuses)))
            seen += [job.id for job in page.jobs]
            assert all(job.status in statuses for job in page.jobs)
            cursor = page.next_cursor
            if cursor is None:
                return seen

    assert listed(JobStatus.PENDING) == ["s-6", "s-3", "s-0"]
    assert listed(JobStatus.PENDING, JobStatus.PROCESSING) == ["s-6", "s-4", "s-3", "s-1", "s-0"]
    assert listed(JobStatus.CANCELLED) == ["s-5", "s-2"]
    assert listed(JobStatus.COMPLETED) == []
    everything = run(job_store.list_for_owner("owner-a", 10, None, frozenset()))
    assert len(everything.jobs) == 7


def test_listed_jobs_are_whole_jobs(job_store: JobStore) -> None:
    # A client's job, not a split job's child (those are never listed).
    job = dataclasses.replace(every_field_set("job-listed"), parent_id=None, task="job")
    insert(job_store, job)
    assert run(job_store.list_for_owner("owner-x", 10, None)).jobs == [job]


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "abc",  # bad padding
        "!!!not base64!!!",
        base64.urlsafe_b64encode(b"\xff\xfe\xfd").decode(),  # not UTF-8
        base64.urlsafe_b64encode(b"yesterday|job-1").decode(),  # not a time
        base64.urlsafe_b64encode(b"2024-05-01 12:00:00|job-1").decode(),  # wrong format
        base64.urlsafe_b64encode(b"no separator at all").decode(),
    ],
)
def test_malformed_cursor_raises_value_error(job_store: JobStore, cursor: str) -> None:
    with pytest.raises(ValueError):
        run(job_store.list_for_owner("owner-a", 3, cursor))


# --- the maintenance sweep -------------------------------------------------------------------


def test_sweep_finds_lost_jobs_by_heartbeat_oldest_first(job_store: JobStore) -> None:
    late = claimed(make_job("late"), T0 + timedelta(minutes=2))
    old = claimed(make_job("old"), T0)
    fresh = claimed(make_job("fresh"), T0 + timedelta(minutes=10))
    insert(job_store, late, old, fresh, make_job("waiting"))
    cutoff = T0 + timedelta(minutes=5)
    found = run(job_store.find_for_sweep(SweepKind.LOST, cutoff, 10))
    assert [job.id for job in found] == ["old", "late"]
    assert [job.id for job in run(job_store.find_for_sweep(SweepKind.LOST, cutoff, 1))] == ["old"]


def test_sweep_finds_completed_jobs_expired_at_or_before_the_cutoff(job_store: JobStore) -> None:
    done = completed(make_job("done"), T0)
    later = completed(make_job("later"), T0 + timedelta(hours=1))
    insert(job_store, later, done)
    assert done.expires_at is not None
    found = run(job_store.find_for_sweep(SweepKind.EXPIRED, done.expires_at, 10))
    assert [job.id for job in found] == ["done"]


def test_sweep_finds_finished_jobs_whose_inputs_are_still_stored(job_store: JobStore) -> None:
    done = completed(make_job("done"), T0)
    cancelled = jobs.cancel(make_job("cancelled"), now=T0 + timedelta(seconds=1))
    cleaned = dataclasses.replace(completed(make_job("cleaned"), T0), inputs_deleted=True)
    insert(job_store, done, cancelled, cleaned, make_job("waiting"))
    found = run(job_store.find_for_sweep(SweepKind.INPUTS_LEFT, T0 + timedelta(minutes=1), 10))
    assert [job.id for job in found] == ["done", "cancelled"]


def test_sweep_finds_pending_jobs_enqueued_before_the_cutoff(job_store: JobStore) -> None:
    stranded = make_job("stranded", created=T0)
    recent = make_job("recent", created=T0 + timedelta(hours=1))
    insert(job_store, recent, stranded, claimed(make_job("busy"), T0))
    found = run(job_store.find_for_sweep(SweepKind.STRANDED, T0 + timedelta(minutes=15), 10))
    assert [job.id for job in found] == ["stranded"]


# --- idempotency keys -------------------------------------------------------------------------


def record(
    key: str = "order-42", *, at: datetime = T0, owner: str = "owner-a"
) -> IdempotencyRecord:
    return new_record(owner, key, f"print-of-{key}", at)


def test_idempotency_record_is_inserted_once_per_owner_and_key(job_store: JobStore) -> None:
    first = record()
    assert run(job_store.insert_idempotency(first))
    assert not run(job_store.insert_idempotency(record(at=T0 + timedelta(seconds=1))))
    assert run(job_store.insert_idempotency(record(owner="owner-b")))
    assert run(job_store.get_idempotency("owner-a", "order-42")) == first
    assert run(job_store.get_idempotency("owner-a", "other-key")) is None


def test_finish_idempotency_sets_the_job_once(job_store: JobStore) -> None:
    mine = record()
    run(job_store.insert_idempotency(mine))
    foreign = dataclasses.replace(mine, fingerprint="another-request")
    assert not run(job_store.finish_idempotency(foreign, "job-x"))
    assert run(job_store.finish_idempotency(mine, "job-1"))
    assert not run(job_store.finish_idempotency(mine, "job-2"))
    assert run(job_store.get_idempotency("owner-a", "order-42")) == dataclasses.replace(
        mine, job_id="job-1"
    )


def test_delete_idempotency_removes_exactly_that_record(job_store: JobStore) -> None:
    old = record()
    run(job_store.insert_idempotency(old))
    run(
        job_store.delete_idempotency(dataclasses.replace(old, created_at=T0 + timedelta(seconds=1)))
    )
    assert run(job_store.get_idempotency("owner-a", "order-42")) == old
    run(job_store.delete_idempotency(old))
    assert run(job_store.get_idempotency("owner-a", "order-42")) is None


def test_purge_idempotency_drops_expired_records_and_counts_them(job_store: JobStore) -> None:
    for n in range(3):
        run(job_store.insert_idempotency(record(f"key-{n}", at=T0 + timedelta(hours=n))))
    purge_at = record(at=T0 + timedelta(hours=1)).expires_at
    assert run(job_store.purge_idempotency(purge_at)) == 2
    assert run(job_store.purge_idempotency(purge_at)) == 0
    assert run(job_store.get_idempotency("owner-a", "key-2")) is not None


def test_input_keys_in_use_are_those_of_jobs_whose_inputs_are_kept(job_store: JobStore) -> None:
    reading = dataclasses.replace(make_job("reading"), image_key="inputs/uploads/1-a/image.png")
    cleaned = dataclasses.replace(
        completed(make_job("cleaned"), T0),
        audio_key="inputs/uploads/1-b/audio.wav",
        inputs_deleted=True,
    )
    insert(job_store, reading, cleaned)
    # More keys than one query takes, so the batches are exercised too.
    asked = [f"inputs/uploads/1-{n}/image.png" for n in range(120)]
    asked += [
        "inputs/uploads/1-a/image.png",
        "inputs/uploads/1-b/audio.wav",
        "inputs/reading/audio.wav",
    ]
    assert run(job_store.input_keys_in_use(asked)) == {
        "inputs/uploads/1-a/image.png",
        "inputs/reading/audio.wav",
    }
    assert run(job_store.input_keys_in_use([])) == set()


def test_a_video_and_a_second_track_are_input_keys_in_use(job_store: JobStore) -> None:
    dubbing = dataclasses.replace(
        make_job("dub"),
        image_key="",
        video_key="inputs/uploads/1-v/video.mp4",
        audio2_key="inputs/uploads/1-w/audio.wav",
    )
    insert(job_store, dubbing)
    asked = ["inputs/uploads/1-v/video.mp4", "inputs/uploads/1-w/audio.wav", ""]
    assert run(job_store.input_keys_in_use(asked)) == set(asked[:2])
