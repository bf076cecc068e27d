"""The PoolStore contract: the pool controller's SQL store behaves alike on SQLite and on
real local D1: the lease's compare-and-set, the pods' records, heartbeats and the drain
acknowledgement, each pod's work read from its agents' jobs, the backlog, the record."""

import asyncio
import dataclasses
from datetime import datetime, timedelta

import pytest

from contracts import FailureCode
from edge_worker.domain import jobs
from edge_worker.domain.jobs import Job
from edge_worker.domain.pool import Backlog, PodActivity
from edge_worker.ports import JobStore, PodUsage, PoolCounters, PoolRecord, PoolStore
from tests.conftest import run
from tests.contracts_ports.test_job_store_contract import RESULT, T0, insert, make_job

LEASE = timedelta(minutes=5)
UNKNOWN_AUDIO = 60.0


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def running(job_id: str, agent: str, *, audio: float | None = None, progress: float = 0) -> Job:
    job = dataclasses.replace(make_job(job_id), audio_seconds=audio)
    claimed = jobs.claim(job, agent_id=agent, claim_token=f"tok-{job_id}", now=at(10))
    return dataclasses.replace(claimed, progress=progress)


def done(job_id: str, agent: str, *, gpu: float | None = RESULT.gpu_seconds) -> Job:
    return jobs.complete(
        running(job_id, agent),
        claim_token=f"tok-{job_id}",
        result=RESULT.model_copy(update={"gpu_seconds": gpu}),
        result_key=f"videos/{job_id}/1.mp4",
        now=at(20),
        retention=timedelta(hours=6),
    )


def only_pod(store: PoolStore) -> PodActivity:
    (pod,) = run(store.pods(T0))
    return pod


def test_the_lease_is_one_holders_until_released_or_expired(pool_store: PoolStore) -> None:
    until = T0 + LEASE
    assert run(pool_store.acquire_lease("a", T0, until))
    assert not run(pool_store.acquire_lease("b", at(1), at(1) + LEASE))
    assert not run(pool_store.acquire_lease("a", at(1), at(1) + LEASE)), "not re-entrant"
    run(pool_store.release_lease("b"))  # not b's to release
    assert not run(pool_store.acquire_lease("b", at(2), at(2) + LEASE))
    # a's pass died holding it: at its expiry another sweep takes it over.
    assert run(pool_store.acquire_lease("b", until, until + LEASE))
    run(pool_store.release_lease("a"))  # a late release leaves b's lease alone
    assert not run(pool_store.acquire_lease("c", until + timedelta(seconds=1), until + LEASE))
    run(pool_store.release_lease("b"))
    assert run(pool_store.acquire_lease("c", until + timedelta(seconds=1), until + LEASE))
    assert run(pool_store.record()) == PoolRecord(None, None, PoolCounters())


def test_of_two_sweeps_racing_for_the_lease_one_wins(pool_store: PoolStore) -> None:
    async def race() -> list[bool]:
        tries = (pool_store.acquire_lease(holder, T0, T0 + LEASE) for holder in ("a", "b", "c"))
        return list(await asyncio.gather(*tries))

    assert sorted(run(race())) == [False, False, True]


def test_pods_are_listed_oldest_first_until_a_day_after_they_stopped(
    pool_store: PoolStore,
) -> None:
    run(pool_store.insert_pod("pod-b", "avatar-pool-b", at(1)))
    run(pool_store.insert_pod("pod-a", "avatar-pool-a", T0))
    run(pool_store.insert_pod("pod-a", "avatar-pool-again", at(5)))  # adopted twice: kept
    assert run(pool_store.pods(T0)) == [
        PodActivity(pod_id="pod-a", created_at=T0),
        PodActivity(pod_id="pod-b", created_at=at(1)),
    ]
    run(pool_store.set_drain("pod-a", at(10)))
    assert run(pool_store.pods(T0))[0].drain_requested_at == at(10)
    run(pool_store.set_drain("pod-a", None))  # taken back into service
    assert run(pool_store.pods(T0))[0].drain_requested_at is None

    run(pool_store.set_drain("pod-a", at(20)))
    run(pool_store.mark_stopped("pod-a", at(30), "drained: its agent stopped pulling"))
    run(pool_store.mark_stopped("pod-a", at(40), "gone from RunPod"))  # the first stop stays
    run(pool_store.set_drain("pod-a", None))  # a stopped pod is not taken back
    stopped = PodActivity(
        pod_id="pod-a",
        created_at=T0,
        drain_requested_at=at(20),
        stopped_at=at(30),
        stop_reason="drained: its agent stopped pulling",
    )
    assert run(pool_store.pods(at(30))) == [stopped, PodActivity("pod-b", at(1))]
    assert run(pool_store.pods(at(31))) == [PodActivity("pod-b", at(1))]


def test_heartbeats_mark_the_pod_and_acknowledge_a_drain(pool_store: PoolStore) -> None:
    assert not run(pool_store.heartbeat(None, "agent-1", True, T0))  # no pod: nothing kept
    assert not run(pool_store.heartbeat("pod-unknown", "agent-9", True, T0))
    run(pool_store.insert_pod("pod-a", "avatar-pool-a", T0))
    assert not run(pool_store.heartbeat("pod-a", "agent-1", False, at(1)))
    assert not run(pool_store.heartbeat("pod-a", "agent-1", True, at(2)))
    assert not run(pool_store.heartbeat("pod-a", "agent-1", False, at(3)))
    assert only_pod(pool_store) == PodActivity(
        pod_id="pod-a", created_at=T0, first_heartbeat_at=at(1), heartbeat_at=at(3), busy_at=at(2)
    )

    run(pool_store.set_drain("pod-a", at(4)))
    assert only_pod(pool_store).drain_acked_at is None, "not told yet"
    assert run(pool_store.heartbeat("pod-a", "agent-1", False, at(5)))
    assert run(pool_store.heartbeat("pod-a", "agent-1", False, at(6)))
    assert only_pod(pool_store).drain_acked_at == at(5), "the first time it was told"
    run(pool_store.set_drain("pod-a", at(7)))  # asked again: a new acknowledgement is due
    assert only_pod(pool_store).drain_acked_at is None
    run(pool_store.set_drain("pod-a", None))
    assert not run(pool_store.heartbeat("pod-a", "agent-1", False, at(8)))
    assert only_pod(pool_store).drain_acked_at is None

    run(pool_store.mark_stopped("pod-a", at(9), "idle"))
    assert not run(pool_store.heartbeat("pod-a", "agent-1", True, at(10)))
    pod = only_pod(pool_store)
    assert (pod.heartbeat_at, pod.busy_at) == (at(8), at(2)), "a stopped pod's record is closed"


def test_a_pods_activity_is_its_agents_jobs(pool_store: PoolStore, job_store: JobStore) -> None:
    for pod in ("pod-a", "pod-b"):
        run(pool_store.insert_pod(pod, f"avatar-pool-{pod}", T0))
    run(pool_store.heartbeat("pod-a", "agent-1", False, at(1)))
    run(pool_store.heartbeat("pod-b", "agent-2", False, at(1)))
    insert(job_store, running("busy", "agent-1"), done("finished", "agent-1"))
    pod_a, pod_b = run(pool_store.pods(T0))
    assert (pod_a.active_jobs, pod_a.busy_at) == (1, at(20)), "the latest sign of a job"
    assert (pod_b.active_jobs, pod_b.busy_at) == (0, None)

    run(pool_store.heartbeat("pod-b", "agent-1", False, at(30)))  # its agent now runs on b
    pod_a, pod_b = run(pool_store.pods(T0))
    assert (pod_a.active_jobs, pod_a.busy_at) == (0, None)
    assert (pod_b.active_jobs, pod_b.busy_at) == (1, at(20))


def test_usage_sums_each_pods_finished_jobs(pool_store: PoolStore, job_store: JobStore) -> None:
    assert run(pool_store.usage([])) == {}
    run(pool_store.heartbeat("pod-a", "agent-1", False, T0))  # seen before its record
    run(pool_store.heartbeat("pod-b", "agent-2", False, T0))
    failed = jobs.fail(
        running("failed", "agent-1"),
        claim_token="tok-failed",
        code=FailureCode.GENERATION_FAILED,
        message="out of memory",
        retryable=False,
        max_attempts=3,
        now=at(20),
    )
    finished = done("done-a", "agent-1")
    expired = jobs.expire(done("expired-a", "agent-1"), now=at(30) + timedelta(hours=6))
    unmetered = done("unmetered-a", "agent-1", gpu=None)
    insert(job_store, finished, expired, unmetered, failed, running("busy", "agent-1"))
    insert(job_store, done("done-b", "agent-2", gpu=10.5), done("elsewhere", "agent-3"))

    usage = run(pool_store.usage(["pod-a", "pod-b", "pod-none"]))
    assert usage.keys() == {"pod-a", "pod-b"}
    assert usage["pod-a"].jobs_done == 3
    assert usage["pod-a"].gpu_seconds == pytest.approx(2 * RESULT.gpu_seconds)
    assert usage["pod-a"].video_seconds == pytest.approx(2 * RESULT.duration_seconds)
    assert usage["pod-b"] == PodUsage(1, 10.5, RESULT.duration_seconds)
    assert run(pool_store.usage(["pod-b"])) == {"pod-b": usage["pod-b"]}


def test_the_backlog_is_pending_and_unfinished_work_and_the_measured_rate(
    pool_store: PoolStore, job_store: JobStore
) -> None:
    assert run(pool_store.backlog(T0, UNKNOWN_AUDIO)) == Backlog(0, 0.0, 0.0, None)
    pending = dataclasses.replace(make_job("pending"), audio_seconds=12.5)
    unknown = make_job("unknown")  # its audio's length could not be read from its header
    segment = dataclasses.replace(
        make_job("segment"),
        task="segment",
        parent_id="parent",
        segment_start_seconds=30.5,
        segment_end_seconds=61.5,
        audio_seconds=99.0,
    )
    stitch = dataclasses.replace(make_job("stitch"), task="stitch", audio_seconds=99.0)
    half = running("half", "agent-1", audio=20.0, progress=25.0)
    insert(job_store, pending, unknown, segment, stitch, half)
    # Measured on client jobs completed since `rate_since`, with GPU seconds reported.
    measured = done("measured", "agent-1", gpu=122.08)
    child = dataclasses.replace(done("child", "agent-1", gpu=1.0), task="segment")
    old = dataclasses.replace(done("old", "agent-1", gpu=1.0), created_at=T0 - timedelta(days=2))
    insert(job_store, measured, child, old, done("unmetered", "agent-1", gpu=None))

    backlog = run(pool_store.backlog(T0 - timedelta(days=1), UNKNOWN_AUDIO))
    assert backlog.pending_jobs == 4
    assert backlog.pending_audio_seconds == pytest.approx(12.5 + UNKNOWN_AUDIO + 31.0)
    assert backlog.running_audio_seconds == pytest.approx(15.0)
    rate = backlog.measured_gpu_seconds_per_video_second
    assert rate == pytest.approx(122.08 / RESULT.duration_seconds)


def test_decisions_are_kept_and_their_counts_added(pool_store: PoolStore) -> None:
    assert run(pool_store.record()) == PoolRecord(None, None, PoolCounters())
    run(pool_store.save_decision(T0, "start 2: backlog", PoolCounters(1, pods_started=2)))
    every = PoolCounters(1, 3, 1, 2, pods_started=0, pods_stopped=1, unresponsive_stopped=1)
    run(pool_store.save_decision(at(60), "stop 1: silent ✓ 'quoted'", every))
    run(pool_store.acquire_lease("a", at(61), at(61) + LEASE))  # the lease leaves it alone
    run(pool_store.release_lease("a"))
    assert run(pool_store.record()) == PoolRecord(
        decided_at=at(60),
        decision="stop 1: silent ✓ 'quoted'",
        counters=PoolCounters(2, 3, 1, 2, pods_started=2, pods_stopped=1, unresponsive_stopped=1),
    )
