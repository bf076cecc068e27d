"""The pull loop: one message at a time, backing off while the queue is idle or failing.

A stop request (SIGTERM/SIGINT, turned into `stop` by the CLI) ends the pulling at
once; the job in progress gets `shutdown_grace_seconds` to finish on its own, after
which the delivery is interrupted and hands the job back to the edge.

Between jobs the loop sends an idle heartbeat (`IdleHeartbeat`) naming its RunPod pod.
When the pool drains the pod the reply says `drain`: the agent pulls nothing more and keeps
heartbeating, idle, until the pool stops the pod (SIGTERM, a clean exit) or takes the
pod back into service (`drain` false: pulling resumes).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from contracts.agent import AgentHeartbeat
from gpu_agent.delivery import MessageDelivery
from gpu_agent.edge_client import EdgeClient, EdgeError
from gpu_agent.outcome import Outcome
from gpu_agent.queue_client import CloudflareQueueClient, QueueError
from gpu_agent.retry import RetryPolicy
from gpu_agent.settings import DEFAULT_IDLE_POLL_MAX_SECONDS, DEFAULT_SHUTDOWN_GRACE_SECONDS

log = logging.getLogger(__name__)

# Only the delays are used; the loop itself retries forever, waiting on the stop event.
# Quick to notice new work, cheap while idle:
IDLE_BACKOFF = RetryPolicy(base_delay=0.25, max_delay=DEFAULT_IDLE_POLL_MAX_SECONDS, jitter=0.25)


def idle_backoff(max_seconds: float) -> RetryPolicy:
    """IDLE_BACKOFF with another ceiling (IDLE_POLL_MAX_SECONDS)."""
    base = min(IDLE_BACKOFF.base_delay, max_seconds)
    return RetryPolicy(base_delay=base, max_delay=max_seconds, jitter=IDLE_BACKOFF.jitter)


# A queue (or local edge) that is down or restarting: 1, 2, 4 ... up to 30 s.
PULL_ERROR_BACKOFF = RetryPolicy(base_delay=1.0, max_delay=30.0, jitter=0.25)


@contextmanager
def shutdown_grace(
    stop: threading.Event, grace_seconds: float, expire: Callable[[], None]
) -> Iterator[None]:
    """Turns a stop request into a deadline for the job in progress.

    A watcher thread blocks on `stop`; from then on the loop has `grace_seconds` to
    finish (the current job runs on), after which `expire` is called once. Nothing
    polls or sleeps: the watcher waits on events and the deadline is an event wait.
    """
    finished = threading.Event()

    def watch() -> None:
        stop.wait()
        log.info(
            "shutdown requested: no more pulls; a job in progress may still finish",
            extra={"grace_seconds": grace_seconds},
        )
        if finished.wait(grace_seconds):
            return
        log.warning("shutdown grace period over, interrupting the job in progress")
        expire()

    watcher = threading.Thread(target=watch, name="shutdown-grace", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        finished.set()
        if stop.is_set():  # else the watcher still waits on `stop`; it is a daemon
            watcher.join()


class IdleHeartbeat:
    """The idle agent's heartbeat, at most one per `interval_seconds`; remembers the last
    answer about draining (a failed heartbeat changes nothing, the next one asks again)."""

    def __init__(
        self,
        edge: EdgeClient,
        *,
        agent_id: str,
        pod_id: str | None,
        interval_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._edge = edge
        self._body = AgentHeartbeat(agent_id=agent_id, pod_id=pod_id)
        self.interval_seconds = interval_seconds
        self._clock = clock
        self._next_at: float | None = None
        self.draining = False

    def beat_if_due(self) -> bool:
        """Send one if it is time; whether this agent must hold off pulling."""
        now = self._clock()
        if self._next_at is not None and now < self._next_at:
            return self.draining
        self._next_at = now + self.interval_seconds
        try:
            drain = self._edge.heartbeat(self._body).drain
        except EdgeError as exc:
            log.warning("idle heartbeat failed", extra={"error": str(exc)})
            return self.draining
        if drain != self.draining:
            log.info(
                "pod drained by the pool: no more pulls" if drain else "pod back in service",
                extra={"pod_id": self._body.pod_id},
            )
        self.draining = drain
        return drain


class Agent:
    """Pulls with batch size 1 and runs each message to its end before pulling again."""

    def __init__(
        self,
        queue: CloudflareQueueClient,
        delivery: MessageDelivery,
        *,
        visibility_timeout_ms: int = 60_000,
        shutdown_grace_seconds: float = DEFAULT_SHUTDOWN_GRACE_SECONDS,
        idle_backoff: RetryPolicy = IDLE_BACKOFF,
        error_backoff: RetryPolicy = PULL_ERROR_BACKOFF,
        sleep: Callable[[float], object] | None = None,
        heartbeat: IdleHeartbeat | None = None,
    ) -> None:
        self._queue = queue
        self._heartbeat = heartbeat
        self._delivery = delivery
        self._visibility_timeout_ms = visibility_timeout_ms
        self._grace = shutdown_grace_seconds
        self._idle = idle_backoff
        self._errors = error_backoff
        self._sleep = sleep

    def run_once(self, stop: threading.Event | None = None) -> Outcome | None:
        """Pull once and run what came; None when the queue was empty or `stop` is set.

        A message that arrives after `stop` was set is handed back unclaimed at once.
        Raises `QueueError` when the pull itself fails.
        """
        messages = self._queue.pull(batch_size=1, visibility_timeout_ms=self._visibility_timeout_ms)
        stopping = stop is not None and stop.is_set()
        keep = [] if stopping else messages[:1]
        for message in messages[len(keep) :]:  # stopping, or a queue that ignores batch_size
            self._delivery.release(message)
        if not keep:
            return None
        return self._delivery.handle(keep[0])

    def run_forever(self, stop: threading.Event) -> None:
        """Loop until `stop` is set; the job in progress gets the grace period to end.

        Nothing but `stop` ends the loop: queue errors (retries exhausted included) and
        unexpected errors back off and pull again.
        """
        wait = self._sleep or stop.wait
        idle_polls = pull_errors = 0
        log.info("agent started")
        with shutdown_grace(stop, self._grace, self._delivery.interrupt):
            while not stop.is_set():
                if self._heartbeat is not None and self._heartbeat.beat_if_due():
                    wait(self._heartbeat.interval_seconds)  # drained: only heartbeats
                    continue
                try:
                    outcome = self.run_once(stop)
                except QueueError as exc:
                    pull_errors += 1
                    delay = self._errors.delay(pull_errors)
                    log.warning(
                        "queue pull failed",
                        extra={"error": str(exc), "retry_in_seconds": round(delay, 2)},
                    )
                    wait(delay)
                    continue
                except Exception:
                    pull_errors += 1
                    log.exception("unexpected error in the pull loop")
                    wait(self._errors.delay(pull_errors))
                    continue
                pull_errors = 0
                if outcome is None:
                    idle_polls += 1
                    wait(self._idle.delay(idle_polls))
                else:
                    idle_polls = 0
                    log.info("message handled", extra={"outcome": outcome.value})
        log.info("agent stopped")
