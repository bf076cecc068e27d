"""The pace and the deadline of `wait()`, shared by both clients (polling and the stream)."""

import time
from collections.abc import Callable

from avatar_client.errors import WaitTimeout

DEFAULT_POLL_INTERVAL = 1.0


class Deadline:
    """How long to sleep before the next status poll, or `WaitTimeout` once time is up."""

    def __init__(
        self,
        job_id: str,
        timeout: float | None,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.job_id = job_id
        self.timeout = timeout
        self.interval = interval
        self._clock = clock
        self._ends = None if timeout is None else clock() + timeout

    def next_sleep(self) -> float:
        remaining = self.remaining()
        return self.interval if remaining is None else min(self.interval, remaining)

    def remaining(self) -> float | None:
        """Seconds left (None: no timeout), or `WaitTimeout` once time is up."""
        if self._ends is None:
            return None
        remaining = self._ends - self._clock()
        if remaining <= 0:
            raise WaitTimeout(
                f"job {self.job_id} is not finished after {self.timeout:g} s; "
                "it keeps running on the server",
                code="WAIT_TIMEOUT",
                details={"job_id": self.job_id},
            )
        return remaining
