"""The usage query of the JobStore contract: daily buckets alike on SQLite and local D1."""

from datetime import UTC, date, datetime, timedelta

from contracts import FailureCode, Quality, Resolution, ResultMetadata
from edge_worker.domain import jobs
from edge_worker.domain.jobs import Job
from edge_worker.domain.usage import UsagePeriod, UsageRow
from edge_worker.ports import JobStore
from tests.conftest import run

DAY1 = datetime(2026, 5, 1, 0, 0, 0, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
RETENTION = timedelta(hours=1)


def created(
    job_id: str, at: datetime, *, owner: str = "owner-a", quality: Quality = Quality.STANDARD
) -> Job:
    return jobs.new_job(
        job_id=job_id,
        owner=owner,
        prompt="talking",
        resolution=Resolution.P480,
        seed=None,
        image_key=f"inputs/{job_id}/image.png",
        audio_key=f"inputs/{job_id}/audio.wav",
        now=at,
        quality=quality,
        audio_seconds=10.0,
    )


def completed(job: Job, video_seconds: float, gpu_seconds: float | None) -> Job:
    now = job.created_at + timedelta(hours=5)  # finished days later still counts on day one
    result = ResultMetadata(
        size_bytes=100,
        duration_seconds=video_seconds,
        width=480,
        height=600,
        engine="preview",
        gpu_seconds=gpu_seconds,
    )
    ran = jobs.claim(job, agent_id="a", claim_token="t", now=now)
    return jobs.complete(
        ran, claim_token="t", result=result, result_key="k", now=now, retention=RETENTION
    )


def failed(job: Job) -> Job:
    ran = jobs.claim(job, agent_id="a", claim_token="t", now=job.created_at)
    return jobs.fail(
        ran,
        claim_token="t",
        code=FailureCode.GENERATION_FAILED,
        message="no",
        retryable=False,
        max_attempts=3,
        now=job.created_at,
    )


def store_all(store: JobStore, *stored: Job) -> None:
    for job in stored:
        run(store.insert(job))


def test_buckets_count_and_sum_by_day_and_quality(job_store: JobStore) -> None:
    done = completed(created("a1", DAY1), 9.5, 30.25)
    expired = jobs.expire(
        completed(created("a2", DAY1 + timedelta(hours=23, minutes=59)), 4.0, None),
        now=DAY2 + timedelta(days=1),
    )
    store_all(
        job_store,
        done,
        expired,
        failed(created("a3", DAY1 + timedelta(hours=1))),
        created("a4", DAY1 + timedelta(hours=2), quality=Quality.FAST),
        created("a5", DAY2, quality=Quality.FAST),
        created("b1", DAY1, owner="owner-b"),
    )
    rows = run(job_store.usage(UsagePeriod(DAY1.date(), DAY2.date()), "owner-a"))
    assert rows == [
        UsageRow("owner-a", date(2026, 5, 1), Quality.FAST, 1, 0, 0, 10.0, 0.0, 0.0),
        UsageRow("owner-a", date(2026, 5, 1), Quality.STANDARD, 3, 2, 1, 30.0, 13.5, 30.25),
        UsageRow("owner-a", date(2026, 5, 2), Quality.FAST, 1, 0, 0, 10.0, 0.0, 0.0),
    ]


def test_the_period_is_whole_utc_days_from_first_to_last(job_store: JobStore) -> None:
    store_all(
        job_store,
        created("before", DAY1 - timedelta(microseconds=1)),
        created("first", DAY1),
        created("last", DAY2 + timedelta(hours=23, minutes=59, seconds=59)),
        created("after", DAY2 + timedelta(days=1)),
    )
    rows = run(job_store.usage(UsagePeriod(DAY1.date(), DAY2.date()), "owner-a"))
    assert [(row.day, row.jobs_created) for row in rows] == [
        (date(2026, 5, 1), 1),
        (date(2026, 5, 2), 1),
    ]
    assert run(job_store.usage(UsagePeriod(DAY2.date(), DAY2.date()), "nobody")) == []


def test_without_an_owner_every_owner_has_its_own_buckets(job_store: JobStore) -> None:
    store_all(
        job_store,
        created("b1", DAY1, owner="owner-b"),
        created("a1", DAY2, owner="owner-a"),
        created("a2", DAY1, owner="owner-a"),
    )
    rows = run(job_store.usage(UsagePeriod(DAY1.date(), DAY2.date())))
    assert [(row.owner, row.day.day, row.jobs_created) for row in rows] == [
        ("owner-a", 1, 1),
        ("owner-a", 2, 1),
        ("owner-b", 1, 1),
    ]
