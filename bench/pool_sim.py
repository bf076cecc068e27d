"""The RunPod pool controller over a simulated day: pod-hours and waits against two baselines.

A seeded day of bursty arrivals (a Poisson process at a base rate, plus bursts at a much
higher rate) is replayed three ways, on a simulated clock in 5 s steps (a day runs in
seconds):

- **controller**: the real policy (`edge_worker.domain.pool.decide`) run every sweep with
  the pods' activity and the backlog as the edge would read them. A pod comes up 3-8 min
  after it is started (the model loads from the network volume: a figure to be replaced by
  the GPU measurement), takes jobs first come first served, heartbeats every 30 s when
  idle (so a drain is acknowledged at its next heartbeat) and is billed from its start to
  its stop;
- **fixed pool**: as many pods as the 95th percentile of the day's concurrent demand (the
  jobs that would be running at once with unlimited, instant pods, over the minutes with
  any), up all day;
- **one pod per job**: each job starts its own pod, which stops when the job ends.

A job costs its audio seconds times GPU-seconds per video-second. Prints pod-hours, p50
and p95 wait (arrival to claim) and cost. Goal (issue 16): the controller at most 50 % of
the fixed pool's pod-hours, with a p95 wait no worse than 1.5 x the fixed pool's.

    .venv/bin/python -m bench.pool_sim [--seed 7] [--hours 24] [--max-pods 24] [--min-pods 0]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from edge_worker.domain.pool import Backlog, PodActivity, PoolPolicy, decide

STEP = 5.0
HEARTBEAT = 30.0
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Workload:
    hours: float = 24.0
    base_per_hour: float = 2.0  # quiet hours: a job every half hour
    bursts: int = 8  # bursts per day, at random times
    burst_minutes: float = 30.0
    burst_per_hour: float = 40.0
    gpu_per_video: float = 30.0
    startup: tuple[float, float] = (180.0, 480.0)


@dataclass(frozen=True)
class Job:
    arrival: float
    audio_seconds: float

    def gpu_seconds(self, workload: Workload) -> float:
        return self.audio_seconds * workload.gpu_per_video


def arrivals(workload: Workload, rng: random.Random) -> list[Job]:
    """Poisson arrivals at the base rate, plus `bursts` windows at the burst rate; audio
    lengths log-normal around 30 s, 5 s to 5 min."""
    horizon = workload.hours * 3600
    times: list[float] = []
    t = rng.expovariate(workload.base_per_hour / 3600)
    while t < horizon:
        times.append(t)
        t += rng.expovariate(workload.base_per_hour / 3600)
    for _ in range(round(workload.bursts * workload.hours / 24)):
        start = rng.uniform(0, horizon - workload.burst_minutes * 60)
        t = start + rng.expovariate(workload.burst_per_hour / 3600)
        while t < start + workload.burst_minutes * 60:
            times.append(t)
            t += rng.expovariate(workload.burst_per_hour / 3600)
    return [
        Job(arrival, min(max(rng.lognormvariate(math.log(30), 0.7), 5.0), 300.0))
        for arrival in sorted(times)
    ]


@dataclass(frozen=True)
class Result:
    name: str
    pods: str
    pod_hours: float
    waits: list[float]

    def percentile(self, q: float) -> float:
        ordered = sorted(self.waits)
        return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def fixed_size(jobs: list[Job], workload: Workload) -> int:
    """The 95th percentile of concurrent demand with unlimited instant pods, per minute."""
    horizon = int(max(job.arrival + job.gpu_seconds(workload) for job in jobs) // 60) + 1
    demand = [0] * horizon
    for job in jobs:
        for minute in range(
            int(job.arrival // 60), int((job.arrival + job.gpu_seconds(workload)) // 60) + 1
        ):
            demand[minute] += 1
    busy = sorted(count for count in demand if count)
    return busy[min(len(busy) - 1, math.ceil(0.95 * len(busy)) - 1)]


def run_fixed(jobs: list[Job], workload: Workload, size: int) -> tuple[Result, float]:
    free_at = [0.0] * size
    waits = []
    end = 0.0
    for job in jobs:
        pod = min(range(size), key=free_at.__getitem__)
        start = max(job.arrival, free_at[pod])
        waits.append(start - job.arrival)
        free_at[pod] = start + job.gpu_seconds(workload)
        end = max(end, free_at[pod])
    return Result(
        "fixed pool", str(size), size * max(end, workload.hours * 3600) / 3600, waits
    ), end


def run_per_job(jobs: list[Job], workload: Workload, rng: random.Random) -> Result:
    waits = [rng.uniform(*workload.startup) for _ in jobs]
    hours = sum(w + job.gpu_seconds(workload) for w, job in zip(waits, jobs, strict=True)) / 3600
    return Result("one pod per job", f"up to {len(jobs)}", hours, waits)


@dataclass
class SimPod:
    pod_id: str
    created: float
    ready_at: float
    job_done_at: float | None = None
    busy_at: float | None = None
    drain_requested: float | None = None
    drain_acked: float | None = None
    stopped: float | None = None

    def activity(self, now: float) -> PodActivity:
        ready = now >= self.ready_at
        idle = self.job_done_at is None
        beat = self.ready_at + HEARTBEAT * ((now - self.ready_at) // HEARTBEAT)
        return PodActivity(
            pod_id=self.pod_id,
            created_at=_at(self.created),
            first_heartbeat_at=_at(self.ready_at) if ready else None,
            heartbeat_at=_at(beat) if ready and idle else None,
            busy_at=_at(self.busy_at) if self.busy_at is not None else None,
            active_jobs=0 if idle else 1,
            drain_requested_at=_at(self.drain_requested) if self.drain_requested else None,
            drain_acked_at=_at(self.drain_acked) if self.drain_acked else None,
        )


def _at(seconds: float) -> datetime:
    return EPOCH + timedelta(seconds=seconds)


@dataclass
class Controlled:
    policy: PoolPolicy
    workload: Workload
    rng: random.Random
    sweep_seconds: float
    pods: list[SimPod] = field(default_factory=list)
    started: int = 0
    peak: int = 0

    def run(self, jobs: list[Job]) -> Result:
        queue: deque[Job] = deque()
        pending = deque(jobs)
        running: dict[str, tuple[Job, float]] = {}
        waits: list[float] = []
        now = 0.0
        horizon = self.workload.hours * 3600
        while now < horizon or pending or queue or running:
            while pending and pending[0].arrival <= now:
                queue.append(pending.popleft())
            for pod in self.live():
                if pod.job_done_at is not None and pod.job_done_at <= now:
                    pod.job_done_at = None
                    pod.busy_at = now
                    running.pop(pod.pod_id)
                if now < pod.ready_at or pod.job_done_at is not None:
                    continue
                if pod.drain_requested is not None:
                    if pod.drain_acked is None and (now - pod.ready_at) % HEARTBEAT < STEP:
                        pod.drain_acked = now
                elif queue:
                    job = queue.popleft()
                    waits.append(now - job.arrival)
                    pod.job_done_at = now + job.gpu_seconds(self.workload)
                    pod.busy_at = now
                    running[pod.pod_id] = (job, pod.job_done_at)
            if now % self.sweep_seconds < STEP:
                self.sweep(now, queue, running)
            now += STEP
        end = max(now, horizon)
        hours = sum(((pod.stopped or end) - pod.created) for pod in self.pods) / 3600
        return Result("controller", f"0-{self.peak}", hours, waits)

    def live(self) -> list[SimPod]:
        return [pod for pod in self.pods if pod.stopped is None]

    def sweep(self, now: float, queue: deque[Job], running: dict[str, tuple[Job, float]]) -> None:
        rate = self.workload.gpu_per_video
        backlog = Backlog(
            pending_jobs=len(queue),
            pending_audio_seconds=sum(job.audio_seconds for job in queue),
            running_audio_seconds=sum((done - now) / rate for _, done in running.values()),
            measured_gpu_seconds_per_video_second=rate,
        )
        live = {pod.pod_id: pod for pod in self.live()}
        decision = decide(
            self.policy, [pod.activity(now) for pod in live.values()], backlog, _at(now)
        )
        for pod_id, _ in decision.stop:
            live[pod_id].stopped = now
        for pod_id in decision.drain:
            live[pod_id].drain_requested = now
        for pod_id in decision.undrain:
            live[pod_id].drain_requested = live[pod_id].drain_acked = None
        for _ in range(decision.start):
            self.started += 1
            startup = self.rng.uniform(*self.workload.startup)
            self.pods.append(SimPod(f"pod{self.started}", now, now + startup))
        self.peak = max(self.peak, len(self.live()))


def simulate(
    seed: int, workload: Workload, policy: PoolPolicy, sweep_seconds: float
) -> tuple[list[Job], list[Result]]:
    rng = random.Random(seed)
    jobs = arrivals(workload, rng)
    size = fixed_size(jobs, workload)
    fixed, _ = run_fixed(jobs, workload, size)
    per_job = run_per_job(jobs, workload, random.Random(seed + 1))
    controlled = Controlled(policy, workload, random.Random(seed + 2), sweep_seconds).run(jobs)
    return jobs, [controlled, fixed, per_job]


def table(results: list[Result], hourly_usd: float) -> str:
    lines = [
        "| pool | pods | pod-hours | p50 wait (s) | p95 wait (s) | cost (USD) |",
        "|---|---|---|---|---|---|",
    ]
    for result in results:
        lines.append(
            f"| {result.name} | {result.pods} | {result.pod_hours:.1f} | "
            f"{statistics.median(result.waits):.0f} | {result.percentile(0.95):.0f} | "
            f"{result.pod_hours * hourly_usd:.2f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.pool_sim", description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--max-pods", type=int, default=24)
    parser.add_argument("--min-pods", type=int, default=0)
    parser.add_argument("--target-wait", type=float, default=300.0)
    parser.add_argument("--idle", type=float, default=600.0)
    parser.add_argument("--sweep", type=float, default=60.0, help="seconds between sweeps")
    parser.add_argument("--gpu-per-video", type=float, default=30.0)
    parser.add_argument("--hourly-usd", type=float, default=2.99)
    args = parser.parse_args(argv)
    workload = Workload(hours=args.hours, gpu_per_video=args.gpu_per_video)
    policy = PoolPolicy(
        min_pods=args.min_pods,
        max_pods=args.max_pods,
        target_wait_seconds=args.target_wait,
        idle_seconds=args.idle,
        startup_grace_seconds=900.0,
        default_gpu_seconds_per_video_second=args.gpu_per_video,
    )
    jobs, results = simulate(args.seed, workload, policy, args.sweep)
    controlled, fixed, _ = results
    print(
        f"{len(jobs)} jobs over {args.hours:g} h (seed {args.seed}), "
        f"{sum(j.audio_seconds for j in jobs) / 60:.0f} min of audio at "
        f"{args.gpu_per_video:g} GPU-s per video-s"
    )
    print(table(results, args.hourly_usd))
    share = controlled.pod_hours / fixed.pod_hours
    ratio = controlled.percentile(0.95) / max(fixed.percentile(0.95), 1.0)
    verdict = "met" if share <= 0.5 and ratio <= 1.5 else "NOT met"
    print(
        f"controller: {share:.0%} of the fixed pool's pod-hours, p95 wait {ratio:.2f} x "
        f"the fixed pool's: goal {verdict}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
