"""Exponential backoff with jitter, and the rule for which failures deserve another try.

Every call that leaves the agent (edge, queue, signed storage URLs) fails with a
`CallError` that says whether it is `transient`: no answer at all (connect error,
timeout, reset) or 429/500/502/503/504. Only those are retried; a final answer (401,
404, 409, 413, 400/422 ...) is returned to the caller at once, because asking again
cannot change it and may hide a real problem for half a minute.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import httpx

log = logging.getLogger(__name__)

T = TypeVar("T")

TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
# Transport failures where the next try may reach a healthy server (a restart, a blip).
# Not UnsupportedProtocol or LocalProtocolError: those are our own mistakes.
TRANSIENT_TRANSPORT_ERRORS = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
    httpx.ProxyError,
)
MAX_EXPONENT = 32  # 2**32 times any sane base delay is far past any ceiling


def is_transient_status(status_code: int) -> bool:
    return status_code in TRANSIENT_STATUSES


def is_transient_transport(exc: httpx.HTTPError) -> bool:
    return isinstance(exc, TRANSIENT_TRANSPORT_ERRORS)


class CallError(Exception):
    """A call to the edge, the queue or storage failed; `transient` says if retrying may help."""

    def __init__(
        self, message: str, *, status_code: int | None = None, transient: bool = False
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.transient = transient


@dataclass(frozen=True)
class RetryPolicy:
    """`attempts` tries in all, waiting `base_delay * 2**n` (at most `max_delay`) between them.

    Jitter only shortens a delay (by up to `jitter` of it), so `max_delay` is a real
    ceiling and agents that failed together do not retry in lockstep. `sleep` and
    `rand` are injectable so tests never wait.
    """

    attempts: int = 6
    base_delay: float = 1.0
    max_delay: float = 10.0
    jitter: float = 0.5
    sleep: Callable[[float], object] = time.sleep
    rand: Callable[[], float] = random.random

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if not 0 <= self.base_delay <= self.max_delay:
            raise ValueError("delays must satisfy 0 <= base_delay <= max_delay")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be between 0 and 1")

    def delay(self, failures: int) -> float:
        """Seconds to wait after the `failures`-th failure in a row (1 for the first)."""
        exponent = min(max(failures - 1, 0), MAX_EXPONENT)
        nominal = min(self.base_delay * 2**exponent, self.max_delay)
        return nominal * (1.0 - self.jitter * self.rand())

    def call(self, fn: Callable[[], T], *, what: str) -> T:
        """Run `fn`, retrying transient `CallError`s; the last error is raised as is."""
        failures = 0
        while True:
            try:
                return fn()
            except CallError as exc:
                failures += 1
                if not exc.transient or failures >= self.attempts:
                    raise
                delay = self.delay(failures)
                log.warning(
                    f"{what} failed, retrying",
                    extra={
                        "error": str(exc),
                        "try": failures,
                        "tries": self.attempts,
                        "retry_in_seconds": round(delay, 2),
                    },
                )
                self.sleep(delay)


# Edge (claim, complete, fail) and queue (ack, retry): waits of at most 1+2+4+8+10 = 25 s
# (12.5 s at least with jitter) ride out an edge restart of several seconds.
API_RETRY = RetryPolicy(attempts=6, base_delay=1.0, max_delay=10.0, jitter=0.5)
# Signed-URL downloads and uploads restart from the start: waits of at most 1+2+4 s, short
# enough that a cancel between two tries still stops the job within 5 s.
TRANSFER_RETRY = RetryPolicy(attempts=4, base_delay=1.0, max_delay=4.0, jitter=0.5)
# Heartbeats: only the delays are used. The heartbeat thread keeps trying (without ever
# blocking the engine) until the edge has been unreachable for `edge_lost_after_seconds`.
HEARTBEAT_RETRY = RetryPolicy(base_delay=1.0, max_delay=5.0, jitter=0.5)
