"""The pace and the deadline of `wait()`, shared by both clients."""

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
        if self._ends is None:
            return self.interval
        remaining = self._ends - self._clock()
        if remaining <= 0:
            raise WaitTimeout(
                f"job {self.job_id} is not finished after {self.timeout:g} s; "
                "it keeps running on the server",
                code="WAIT_TIMEOUT",
                details={"job_id": self.job_id},
            )
        return min(self.interval, remaining)
