"""When to try a call again: network errors, 429 and 503-like answers, with backoff.

Shared by both clients; they only sleep (or await) the delays decided here.
"""

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

import httpx

from avatar_client.errors import ConnectionFailed, error_from_response

RETRY_AFTER_HEADER = "Retry-After"


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded in attempts and in each delay.

    A `Retry-After` longer than `max_delay` is not waited for: the error is raised, so a
    caller is never blocked for an hour by one answer.
    """

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    statuses: frozenset[int] = frozenset({429, 502, 503, 504})
    # Injectable so tests are deterministic: a fraction in [0, 1), and the wall clock
    # (for Retry-After dates).
    random: Callable[[], float] = field(default=random.random, compare=False)
    wall_clock: Callable[[], float] = field(default=time.time, compare=False)

    def backoff(self, attempt: int) -> float:
        """The jittered delay after failed attempt number `attempt` (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return ceiling * self.random()

    def delay_after(self, attempt: int, response: httpx.Response | None) -> float | None:
        """Seconds to wait before the next attempt, or None to give up.

        `response` is None for a network error.
        """
        if attempt >= self.max_attempts:
            return None
        if response is None:
            return self.backoff(attempt)
        if response.status_code not in self.statuses:
            return None
        retry_after = parse_retry_after(response.headers.get(RETRY_AFTER_HEADER), self.wall_clock())
        if retry_after is None:
            return self.backoff(attempt)
        return retry_after if retry_after <= self.max_delay else None


def parse_retry_after(value: str | None, now: float) -> float | None:
    """`Retry-After` as seconds from `now`: delta-seconds or an HTTP date; None if absent
    or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


class Retries:
    """The attempts of one call: the delay before the next, or the error that ends them."""

    def __init__(self, policy: RetryPolicy, url: str) -> None:
        self.policy = policy
        self.url = url
        self.attempts = 0

    def after_error(self, error: httpx.TransportError) -> float:
        self.attempts += 1
        delay = self.policy.delay_after(self.attempts, None)
        if delay is None:
            raise ConnectionFailed(
                f"cannot reach {self.url}: {error or type(error).__name__}",
                code="CONNECTION_FAILED",
            ) from error
        return delay

    def after_answer(self, response: httpx.Response) -> float:
        """For a non-2xx answer whose body was read."""
        self.attempts += 1
        delay = self.policy.delay_after(self.attempts, response)
        if delay is None:
            raise error_from_response(response)
        return delay
