"""When a failed webhook attempt is tried again, and when the edge gives up.

Delays double from `base` up to `cap` (5, 10, 20, ... 300, 300 s by default), and attempts go
on until at least `min_attempts` were made over at least `min_span` since the first one:
with the defaults, 18 attempts over about 1 h. A 2xx answer is delivered; 410 Gone says the
receiver is gone for good and stops the retries; any other answer, or none, is retried.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class Outcome(StrEnum):
    DELIVERED = "delivered"
    GONE = "gone"
    RETRY = "retry"


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 5.0
    cap_seconds: float = 300.0
    min_attempts: int = 8
    min_span: timedelta = timedelta(hours=1)

    def delay_after(self, attempts: int) -> float:
        """The wait after the `attempts`-th failed attempt of a series."""
        return min(self.base_seconds * 2.0 ** max(attempts - 1, 0), self.cap_seconds)

    def next_delay(self, attempts: int, first_attempt_at: datetime, now: datetime) -> float | None:
        """The wait before the next attempt, or None when the series is over: at least
        `min_attempts` made and `min_span` spent."""
        if attempts >= self.min_attempts and now - first_attempt_at >= self.min_span:
            return None
        return self.delay_after(attempts)


def outcome(status_code: int | None) -> Outcome:
    if status_code is not None and 200 <= status_code < 300:
        return Outcome.DELIVERED
    if status_code == 410:
        return Outcome.GONE
    return Outcome.RETRY
