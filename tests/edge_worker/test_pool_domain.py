"""`domain.pool.decide`: the pool's rules on their own, with no store and no RunPod."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from edge_worker.domain.pool import Backlog, PodActivity, PodState, PoolPolicy, decide

NOW = datetime(2025, 1, 1, 12, tzinfo=UTC)
POLICY = PoolPolicy(
    min_pods=0,
    max_pods=4,
    target_wait_seconds=300,
    idle_seconds=600,
    startup_grace_seconds=900,
    default_gpu_seconds_per_video_second=30,
)
EMPTY = Backlog(pending_jobs=0, pending_audio_seconds=0, running_audio_seconds=0)


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def idle_pod(pod_id: str, idle_for: float, **fields: Any) -> PodActivity:
    pod = PodActivity(
        pod_id=pod_id,
        created_at=ago(idle_for + 1000),
        first_heartbeat_at=ago(idle_for + 900),
        heartbeat_at=ago(10),
        busy_at=ago(idle_for),
    )
    return replace(pod, **fields)


def test_a_draining_pod_is_taken_back_before_a_new_one_is_started() -> None:
    draining = idle_pod("a", 700, drain_requested_at=ago(30), drain_acked_at=ago(20))
    work = Backlog(pending_jobs=2, pending_audio_seconds=20, running_audio_seconds=0)
    decision = decide(POLICY, [draining], work, NOW)
    assert decision.undrain == ["a"] and decision.start == 1 and decision.stop == []


def test_a_busy_pod_is_never_drained_and_counts_as_wanted() -> None:
    busy = idle_pod("b", 2000, active_jobs=1)
    decision = decide(POLICY, [busy, idle_pod("i", 2000)], EMPTY, NOW)
    assert busy.state() is PodState.BUSY
    assert decision.desired == 1 and decision.drain == ["i"]


def test_a_pod_idle_less_than_the_idle_time_is_kept() -> None:
    decision = decide(POLICY, [idle_pod("i", 599)], EMPTY, NOW)
    assert decision.drain == [] and not decision.acts


def test_a_pod_that_went_silent_is_stopped_without_draining() -> None:
    silent = PodActivity(
        pod_id="s", created_at=ago(5000), first_heartbeat_at=ago(4000), heartbeat_at=ago(901)
    )
    decision = decide(POLICY, [silent], EMPTY, NOW)
    assert decision.stop == [("s", "silent for 901 s")] and decision.unresponsive == ["s"]


def test_pods_being_drained_count_against_the_maximum() -> None:
    draining = [idle_pod(f"d{i}", 700, drain_requested_at=ago(5)) for i in range(3)]
    work = Backlog(pending_jobs=50, pending_audio_seconds=3000, running_audio_seconds=0)
    decision = decide(POLICY, draining, work, NOW)
    assert decision.undrain == ["d0", "d1", "d2"] and decision.start == 1
    assert "within [0, 4]" in decision.reason
