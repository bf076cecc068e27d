"""The stores behind quotas and fair queueing behave alike on SQLite and on real local D1:
the token bucket's compare-and-set, an owner's load, and the held jobs of admission."""

import dataclasses
from datetime import timedelta

from edge_worker.domain import jobs
from edge_worker.domain.quotas import Bucket
from edge_worker.ports import BucketStore, JobStore
from tests.conftest import run
from tests.contracts_ports.test_job_store_contract import (
    RESULT,
    T0,
    claimed,
    completed,
    insert,
    make_job,
)


def held_job(job_id: str, *, owner: str = "owner-a", seconds: int = 0) -> jobs.Job:
    return dataclasses.replace(
        make_job(job_id, owner=owner, created=T0 + timedelta(seconds=seconds)), enqueued_at=None
    )


def test_a_bucket_is_written_only_over_the_one_it_was_computed_from(
    bucket_store: BucketStore,
) -> None:
    assert run(bucket_store.get_bucket("owner-a")) is None
    first = Bucket(tokens=59.0, updated_at=1_780_000_000.123456)
    assert run(bucket_store.save_bucket("owner-a", first, None))
    # A second "first" request lost the race for the row.
    assert not run(bucket_store.save_bucket("owner-a", Bucket(59.0, 1.0), None))
    assert run(bucket_store.get_bucket("owner-a")) == first
    taken = Bucket(tokens=58.25, updated_at=first.updated_at + 0.75)
    assert run(bucket_store.save_bucket("owner-a", taken, first))
    # Two requests computed from `first`: only one of them took its token.
    assert not run(bucket_store.save_bucket("owner-a", Bucket(58.0, 2.0), first))
    assert run(bucket_store.get_bucket("owner-a")) == taken
    assert run(bucket_store.get_bucket("owner-b")) is None


def test_owner_load_counts_unfinished_queued_and_todays_video(job_store: JobStore) -> None:
    yesterday = completed(make_job("old", created=T0 - timedelta(days=1)), T0 - timedelta(days=1))
    today = completed(make_job("today", created=T0), T0 + timedelta(seconds=1))
    expired = jobs.expire(today, now=today.expires_at or T0)
    insert(job_store, yesterday, dataclasses.replace(expired, id="expired"), today)
    insert(job_store, make_job("queued"), held_job("held"), claimed(make_job("busy"), T0))
    insert(job_store, make_job("other", owner="owner-b"))
    load = run(job_store.owner_load("owner-a", T0))
    assert (load.active, load.queued) == (3, 1)
    assert load.video_seconds == 2 * RESULT.duration_seconds
    empty = run(job_store.owner_load("owner-c", T0))
    assert (empty.active, empty.queued, empty.video_seconds) == (0, 0, 0.0)


def test_held_jobs_oldest_first_and_their_owners(job_store: JobStore) -> None:
    insert(job_store, held_job("h2", seconds=2), held_job("h1", seconds=1), make_job("queued"))
    insert(job_store, held_job("b1", owner="owner-b"))
    assert [job.id for job in run(job_store.held_jobs("owner-a", 5))] == ["h1", "h2"]
    assert [job.id for job in run(job_store.held_jobs("owner-a", 1))] == ["h1"]
    assert sorted(run(job_store.owners_with_held(10))) == ["owner-a", "owner-b"]


def test_queue_position_follows_enqueue_time_then_admission_turns(job_store: JobStore) -> None:
    a_queued = make_job("a-queued", created=T0 + timedelta(seconds=5))
    b_queued = make_job("b-queued", owner="owner-b", created=T0 + timedelta(seconds=9))
    a_held = [held_job(f"a-held-{n}", seconds=n) for n in range(3)]
    b_held = held_job("b-held-0", owner="owner-b", seconds=20)
    insert(job_store, a_queued, b_queued, *a_held, b_held)
    # Re-enqueued later (a retry): behind the job enqueued before it, whatever its age.
    retried = dataclasses.replace(make_job("retried"), enqueued_at=T0 + timedelta(seconds=7))
    insert(job_store, retried)
    positions = [run(job_store.count_pending_before(job)) for job in (a_queued, retried, b_queued)]
    assert positions == [0, 1, 2]
    # Held: all 3 queued, then owner-a's held ahead, and owner-b's one held job once it is its turn.
    assert [run(job_store.count_pending_before(job)) for job in a_held] == [3, 5, 6]
    assert run(job_store.count_pending_before(b_held)) == 3
