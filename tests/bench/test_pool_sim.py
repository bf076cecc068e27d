"""`bench/pool_sim.py` on a short day: the real policy against its two baselines."""

import random

import pytest

from bench import pool_sim
from edge_worker.domain.pool import PoolPolicy

POLICY = PoolPolicy(
    min_pods=0,
    max_pods=6,
    target_wait_seconds=300,
    idle_seconds=600,
    startup_grace_seconds=900,
    default_gpu_seconds_per_video_second=30,
)


def test_a_short_day_is_reproducible_and_the_controller_stays_within_its_bounds() -> None:
    workload = pool_sim.Workload(hours=4)
    jobs, results = pool_sim.simulate(3, workload, POLICY, sweep_seconds=60)
    again, repeated = pool_sim.simulate(3, workload, POLICY, sweep_seconds=60)
    assert jobs == again and [r.pod_hours for r in results] == [r.pod_hours for r in repeated]
    controlled, fixed, per_job = results
    assert [r.name for r in results] == ["controller", "fixed pool", "one pod per job"]
    assert all(len(r.waits) == len(jobs) for r in results)  # every job ran, once
    assert controlled.pods.startswith("0-") and int(controlled.pods[2:]) <= POLICY.max_pods
    assert controlled.pod_hours < fixed.pod_hours
    # A pod per job always waits for a pod to come up: 3 to 8 minutes.
    assert min(per_job.waits) >= 180 and max(per_job.waits) <= 480


def test_the_fixed_pool_is_sized_for_the_95th_percentile_of_demand() -> None:
    workload = pool_sim.Workload(gpu_per_video=1.0)
    jobs = [pool_sim.Job(arrival=60.0 * i, audio_seconds=30.0) for i in range(10)]
    jobs += [pool_sim.Job(arrival=3600.0, audio_seconds=600.0) for _ in range(3)]
    assert pool_sim.fixed_size(jobs, workload) == 3
    fixed, end = pool_sim.run_fixed(jobs, workload, 1)
    assert max(fixed.waits) == pytest.approx(1200.0) and end == pytest.approx(5400.0)
    per_job = pool_sim.run_per_job(jobs[:1], workload, random.Random(1))
    assert per_job.pods == "up to 1"


def test_main_prints_the_comparison(capsys: pytest.CaptureFixture[str]) -> None:
    assert pool_sim.main(["--hours", "3", "--seed", "2"]) == 0
    out = capsys.readouterr().out
    assert "| controller |" in out and "| fixed pool |" in out and "| one pod per job |" in out
    assert "of the fixed pool's pod-hours" in out
