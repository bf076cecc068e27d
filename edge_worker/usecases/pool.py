"""The RunPod pool controller, one pass per maintenance sweep, and the pool's status.

A pass takes the lease (so two sweeps never both act), lists RunPod's pods, reconciles
them with its own records, asks `domain.pool.decide` what to do and does it. A RunPod
error never breaks the sweep: it is counted, and the next pass starts over from what
RunPod and the records say then.
"""

import logging
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from contracts.pool import PoolApiErrors, PoolPodView, PoolView
from edge_worker.domain import pool
from edge_worker.ports import PodApiError, PodSpec, PoolCounters, ProviderPod
from edge_worker.usecases.context import EdgeContext

log = logging.getLogger("edge_worker.pool")

POD_NAME_PREFIX = "avatar-pool-"
LEASE = timedelta(minutes=5)  # longer than a pass with every RunPod call timing out
RATE_WINDOW = timedelta(days=1)  # GPU-seconds per video-second over the last day's jobs
SHOW_STOPPED = timedelta(days=1)
# A job whose audio length the edge could not read from its header counts this much.
UNKNOWN_AUDIO_SECONDS = 60.0
GONE = frozenset({"TERMINATED", "EXITED"})


@dataclass(frozen=True)
class PassReport:
    acted: bool
    decision: str


def _count(counted: PoolCounters, error: PodApiError) -> PoolCounters:
    status = error.status_code
    if status == 429:
        return replace(counted, rate_limited=counted.rate_limited + 1)
    if status is None:
        return replace(counted, unreachable=counted.unreachable + 1)
    if status >= 500:
        return replace(counted, server_errors=counted.server_errors + 1)
    return replace(counted, refused=counted.refused + 1)


class PoolController:
    def __init__(self, context: EdgeContext) -> None:
        self.context = context
        settings = context.settings
        self.policy = pool.PoolPolicy(
            min_pods=settings.pool_min_pods,
            max_pods=settings.pool_max_pods or 0,
            target_wait_seconds=settings.pool_target_wait_seconds,
            idle_seconds=settings.pool_idle_seconds,
            startup_grace_seconds=settings.pool_startup_grace_seconds,
            default_gpu_seconds_per_video_second=settings.pool_gpu_seconds_per_video_second,
        )

    def pod_spec(self) -> PodSpec:
        """The agent's env: the edge's own URL and agent token, then POOL_POD_ENV."""
        settings = self.context.settings
        env = {
            "EDGE_URL": settings.public_url,
            "AGENT_TOKEN": settings.agent_token,
            **settings.pool_pod_env,
        }
        return PodSpec(
            name=POD_NAME_PREFIX + secrets.token_hex(4),
            env=env,
            template_id=settings.pool_pod_template_id,
            image_name=settings.pool_image,
            gpu_type_ids=settings.pool_gpu_type_ids,
            network_volume_id=settings.pool_network_volume_id,
            container_disk_in_gb=None
            if settings.pool_pod_template_id
            else settings.pool_container_disk_gb,
        )

    async def run(self) -> PassReport | None:
        """One pass; None when the controller is off or another sweep holds the lease."""
        provider = self.context.pods
        if provider is None:
            return None
        store = self.context.pool
        now = self.context.clock.now()
        holder = secrets.token_hex(8)
        if not await store.acquire_lease(holder, now, now + LEASE):
            log.info("pool pass skipped: another sweep holds the lease")
            return None
        counted = PoolCounters()
        try:
            try:
                listed = await provider.list_pods()
            except PodApiError as exc:
                counted = _count(counted, exc)
                reason = f"RunPod unavailable, retried next sweep: {exc}"
                log.warning("pool pass skipped", extra={"error": str(exc)})
                await store.save_decision(now, reason, counted)
                return PassReport(acted=False, decision=reason)
            await self._reconcile(listed, now)
            decision = pool.decide(
                self.policy,
                [pod for pod in await store.pods(now) if pod.stopped_at is None],
                await store.backlog(now - RATE_WINDOW, UNKNOWN_AUDIO_SECONDS),
                now,
            )
            counted = await self._apply(decision, now, counted)
            errors = counted.rate_limited + counted.server_errors
            errors += counted.unreachable + counted.refused
            reason = decision.reason + (f"; {errors} RunPod call(s) failed" if errors else "")
            await store.save_decision(now, reason, counted)
            if decision.acts:
                log.info("pool decision", extra={"decision": reason})
            return PassReport(acted=decision.acts, decision=reason)
        finally:
            await store.release_lease(holder)

    async def _reconcile(self, listed: list[ProviderPod], now: datetime) -> None:
        """Adopt our pods RunPod has and we lost track of (a pass that died between create
        and record); close the records of pods RunPod no longer runs."""
        store = self.context.pool
        known = {pod.pod_id: pod for pod in await store.pods(now)}
        running = {pod.pod_id: pod for pod in listed if pod.desired_status not in GONE}
        for pod_id, pod in running.items():
            if pod_id not in known and pod.name.startswith(POD_NAME_PREFIX):
                await store.insert_pod(pod_id, pod.name, now)
                log.warning("pool adopted a pod it had not recorded", extra={"pod_id": pod_id})
        for pod_id, record in known.items():
            if record.stopped_at is None and pod_id not in running:
                await store.mark_stopped(pod_id, now, "gone from RunPod")

    async def _apply(
        self, decision: pool.Decision, now: datetime, counted: PoolCounters
    ) -> PoolCounters:
        store = self.context.pool
        provider = self.context.pods
        assert provider is not None
        for pod_id, why in decision.stop:
            try:
                await provider.terminate(pod_id)
            except PodApiError as exc:
                counted = _count(counted, exc)
                continue
            await store.mark_stopped(pod_id, now, why)
            counted = replace(counted, pods_stopped=counted.pods_stopped + 1)
            if pod_id in decision.unresponsive:
                counted = replace(counted, unresponsive_stopped=counted.unresponsive_stopped + 1)
                log.warning(
                    "pool stopped an unresponsive pod", extra={"pod_id": pod_id, "why": why}
                )
        for pod_id in decision.drain:
            await store.set_drain(pod_id, now)
        for pod_id in decision.undrain:
            await store.set_drain(pod_id, None)
        for _ in range(decision.start):
            try:
                created = await provider.create(self.pod_spec())
            except PodApiError as exc:
                counted = _count(counted, exc)
                break  # the next sweep asks again
            await store.insert_pod(created.pod_id, created.name, now)
            counted = replace(counted, pods_started=counted.pods_started + 1)
        return counted

    async def status(self) -> PoolView:
        context = self.context
        settings = context.settings
        now = context.clock.now()
        pods = await context.pool.pods(now - SHOW_STOPPED)
        usage = await context.pool.usage([pod.pod_id for pod in pods])
        backlog = await context.pool.backlog(now - RATE_WINDOW, UNKNOWN_AUDIO_SECONDS)
        record = await context.pool.record()
        views = []
        for pod in pods:
            used = usage.get(pod.pod_id)
            end = pod.stopped_at or now
            views.append(
                PoolPodView(
                    pod_id=pod.pod_id,
                    state=pod.state().value,
                    created_at=pod.created_at,
                    uptime_seconds=max((end - pod.created_at).total_seconds(), 0.0),
                    last_heartbeat_at=pod.heartbeat_at,
                    jobs_done=used.jobs_done if used else 0,
                    gpu_seconds=used.gpu_seconds if used else 0.0,
                    gpu_seconds_per_video_second=used.gpu_seconds / used.video_seconds
                    if used and used.video_seconds
                    else None,
                    stopped_at=pod.stopped_at,
                    stop_reason=pod.stop_reason,
                )
            )
        up = sum(1 for pod in pods if pod.stopped_at is None)
        hourly = settings.pool_pod_hourly_usd
        counters = record.counters
        return PoolView(
            enabled=context.pods is not None,
            min_pods=settings.pool_min_pods,
            max_pods=settings.pool_max_pods,
            pods=views,
            last_decision_at=record.decided_at,
            last_decision=record.decision,
            gpu_seconds_per_video_second=pool.gpu_rate(self.policy, backlog),
            estimated_cost_per_hour_usd=None if hourly is None else round(up * hourly, 4),
            pods_started=counters.pods_started,
            pods_stopped=counters.pods_stopped,
            unresponsive_stopped=counters.unresponsive_stopped,
            api_errors=PoolApiErrors(
                rate_limited=counters.rate_limited,
                server_errors=counters.server_errors,
                unreachable=counters.unreachable,
                refused=counters.refused,
            ),
        )
