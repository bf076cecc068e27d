"""The pull loop: one message at a time, backing off while the queue is idle or failing."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable

from gpu_agent.queue_client import CloudflareQueueClient, QueueError
from gpu_agent.runner import JobRunner, Outcome

log = logging.getLogger(__name__)


class Backoff:
    """Exponential delays with jitter: quick to notice new work, cheap while idle.

    Jitter only shortens a delay, so `maximum` is a real ceiling, and agents started
    together drift apart instead of polling in lockstep.
    """

    def __init__(
        self,
        initial: float = 0.25,
        maximum: float = 3.0,
        factor: float = 2.0,
        jitter: float = 0.25,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._initial = initial
        self._maximum = maximum
        self._factor = factor
        self._jitter = jitter
        self._rand = rand
        self._current = initial

    def next(self) -> float:
        base = min(self._current, self._maximum)
        self._current = min(self._current * self._factor, self._maximum)
        return base * (1.0 - self._jitter * self._rand())

    def reset(self) -> None:
        self._current = self._initial


class Agent:
    """Pulls with batch size 1 and runs each message to its end before pulling again."""

    def __init__(
        self,
        queue: CloudflareQueueClient,
        runner: JobRunner,
        *,
        visibility_timeout_ms: int = 60_000,
        idle_backoff: Backoff | None = None,
        error_backoff: Backoff | None = None,
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        self._queue = queue
        self._runner = runner
        self._visibility_timeout_ms = visibility_timeout_ms
        self._idle = idle_backoff or Backoff()
        self._errors = error_backoff or Backoff(initial=1.0, maximum=30.0)
        self._sleep = sleep

    def run_once(self) -> Outcome | None:
        """Pull once and run what came; None when the queue was empty.

        Raises `QueueError` when the pull itself fails.
        """
        messages = self._queue.pull(batch_size=1, visibility_timeout_ms=self._visibility_timeout_ms)
        if not messages:
            return None
        first, *extra = messages
        for message in extra:  # a queue that ignores batch_size: give the rest back now
            try:
                self._queue.retry(message.lease_id, 0)
            except QueueError as exc:
                log.warning("could not release an extra message", extra={"error": str(exc)})
        return self._runner.run(first)

    def run_forever(self, stop: threading.Event) -> None:
        """Loop until `stop` is set; a job in progress always runs to its end first."""
        wait = self._sleep or stop.wait
        log.info("agent started")
        while not stop.is_set():
            try:
                outcome = self.run_once()
            except QueueError as exc:
                delay = self._errors.next()
                log.warning(
                    "queue pull failed",
                    extra={"error": str(exc), "retry_in_seconds": round(delay, 2)},
                )
                wait(delay)
                continue
            except Exception:
                delay = self._errors.next()
                log.exception("unexpected error in the pull loop")
                wait(delay)
                continue
            self._errors.reset()
            if outcome is None:
                wait(self._idle.next())
            else:
                self._idle.reset()
                log.info("message handled", extra={"outcome": outcome.value})
        log.info("agent stopped")
