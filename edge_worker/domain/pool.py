"""The RunPod pool's policy: given the pods, their agents' activity and the backlog, which
pods to start, to drain, to take back from draining and to stop, and why.

Plain rules, no I/O: the controller (`usecases/pool.py`) gathers the inputs and applies the
decision; `bench/pool_sim.py` replays a day of arrivals through the same `decide`. A pod is
stopped only after its agent was told to drain and said so at a heartbeat with no job in
progress, or when it never showed up (or went silent) for the startup grace.
"""

import math
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class PodState(StrEnum):
    STARTING = "starting"  # created; its agent has not been heard from yet
    BUSY = "busy"  # its agent holds a claim
    IDLE = "idle"
    DRAINING = "draining"  # told to stop pulling; stopped once its agent acknowledged it
    STOPPED = "stopped"


@dataclass(frozen=True)
class PoolPolicy:
    min_pods: int
    max_pods: int
    target_wait_seconds: float
    idle_seconds: float
    startup_grace_seconds: float
    # Until completed jobs measured it: GPU-seconds one second of video costs.
    default_gpu_seconds_per_video_second: float


@dataclass(frozen=True)
class PodActivity:
    """One pod as the controller sees it: its own record joined with its agents' jobs."""

    pod_id: str
    created_at: datetime
    first_heartbeat_at: datetime | None = None
    heartbeat_at: datetime | None = None
    busy_at: datetime | None = None  # the latest sign of a job: a claim, progress, the end
    active_jobs: int = 0  # jobs its agents hold now
    drain_requested_at: datetime | None = None
    drain_acked_at: datetime | None = None
    stopped_at: datetime | None = None
    stop_reason: str | None = None

    @property
    def last_seen(self) -> datetime | None:
        seen = [at for at in (self.heartbeat_at, self.busy_at) if at is not None]
        return max(seen) if seen else None

    def state(self) -> PodState:
        if self.stopped_at is not None:
            return PodState.STOPPED
        if self.drain_requested_at is not None:
            return PodState.DRAINING
        if self.active_jobs > 0:
            return PodState.BUSY
        if self.last_seen is None:
            return PodState.STARTING
        return PodState.IDLE

    def idle_since(self) -> datetime:
        """Since when no job ran on it (its first sign of life if it never ran one)."""
        marks = [at for at in (self.first_heartbeat_at, self.busy_at) if at is not None]
        return max(marks) if marks else self.created_at


@dataclass(frozen=True)
class Backlog:
    pending_jobs: int
    pending_audio_seconds: float
    # What the jobs in progress still have to render (their audio times progress left).
    running_audio_seconds: float
    measured_gpu_seconds_per_video_second: float | None = None


@dataclass(frozen=True)
class Decision:
    desired: int
    reason: str
    start: int = 0
    drain: list[str] = field(default_factory=list)
    undrain: list[str] = field(default_factory=list)
    # (pod id, why), and whether it is stopped for never or no longer answering.
    stop: list[tuple[str, str]] = field(default_factory=list)
    unresponsive: list[str] = field(default_factory=list)

    @property
    def acts(self) -> bool:
        return bool(self.start or self.drain or self.undrain or self.stop)


def gpu_rate(policy: PoolPolicy, backlog: Backlog) -> float:
    return backlog.measured_gpu_seconds_per_video_second or (
        policy.default_gpu_seconds_per_video_second
    )


def pods_for(policy: PoolPolicy, backlog: Backlog) -> int:
    """Pods that keep the backlog's estimated GPU time per pod under the target wait."""
    work = (backlog.pending_audio_seconds + backlog.running_audio_seconds) * gpu_rate(
        policy, backlog
    )
    needed = math.ceil(work / policy.target_wait_seconds - 1e-9)
    return max(needed, 1) if backlog.pending_jobs else needed


def decide(
    policy: PoolPolicy, pods: list[PodActivity], backlog: Backlog, now: datetime
) -> Decision:
    live = [pod for pod in pods if pod.stopped_at is None]
    stop: list[tuple[str, str]] = []
    unresponsive: list[str] = []
    for pod in live:
        why = _unresponsive(policy, pod, now)
        if why is not None:
            stop.append((pod.pod_id, why))
            unresponsive.append(pod.pod_id)
    remaining = [pod for pod in live if pod.pod_id not in unresponsive]
    serving = [pod for pod in remaining if pod.state() is not PodState.DRAINING]
    draining = [pod for pod in remaining if pod.state() is PodState.DRAINING]
    busy = sum(1 for pod in serving if pod.state() is PodState.BUSY)
    # A pod runs one job at a time: more pods than jobs would only wait for work.
    wanted = min(pods_for(policy, backlog), backlog.pending_jobs + busy)
    desired = min(max(wanted, busy, policy.min_pods), policy.max_pods)

    undrain: list[str] = []
    drain: list[str] = []
    start = 0
    if desired > len(serving):
        gap = desired - len(serving)
        undrain = [pod.pod_id for pod in draining[:gap]]
        start = max(0, min(gap - len(undrain), policy.max_pods - len(remaining)))
    elif desired < len(serving):
        idle_enough = sorted(
            (
                pod
                for pod in serving
                if pod.state() is PodState.IDLE
                and (now - pod.idle_since()).total_seconds() >= policy.idle_seconds
            ),
            key=lambda pod: pod.idle_since(),
        )
        drain = [pod.pod_id for pod in idle_enough[: len(serving) - desired]]
    for pod in draining:
        if pod.pod_id not in undrain and pod.drain_acked_at is not None and not pod.active_jobs:
            stop.append((pod.pod_id, "drained: its agent stopped pulling"))

    counts = {state: 0 for state in PodState}
    for pod in remaining:
        counts[pod.state()] += 1
    reason = (
        f"backlog {backlog.pending_jobs} pending ({backlog.pending_audio_seconds:.0f} s of "
        f"audio) + {backlog.running_audio_seconds:.0f} s in progress at "
        f"{gpu_rate(policy, backlog):g} GPU-s per video-s: {wanted} pod(s) for a "
        f"{policy.target_wait_seconds:g} s wait, {desired} within [{policy.min_pods}, "
        f"{policy.max_pods}]; now "
        + ", ".join(f"{counts[state]} {state.value}" for state in PodState if counts[state])
        + (" (no pods)" if not remaining else "")
        + f"; start {start}, drain {len(drain)}, back from draining {len(undrain)}, "
        f"stop {len(stop)}"
    )
    return Decision(
        desired=desired,
        reason=reason,
        start=start,
        drain=drain,
        undrain=undrain,
        stop=stop,
        unresponsive=unresponsive,
    )


def _unresponsive(policy: PoolPolicy, pod: PodActivity, now: datetime) -> str | None:
    """Why a pod with no job is stopped without draining: its agent never came up, or
    stopped answering, for the startup grace."""
    if pod.active_jobs:
        return None
    grace = policy.startup_grace_seconds
    seen = pod.last_seen
    if seen is None:
        if (now - pod.created_at).total_seconds() >= grace:
            return f"no heartbeat within the {grace:g} s startup grace"
        return None
    silent = (now - seen).total_seconds()
    return f"silent for {silent:.0f} s" if silent >= grace else None
