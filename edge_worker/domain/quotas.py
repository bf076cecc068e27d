"""Per-key limits on work: the token bucket of the request rate, the cap on unfinished
jobs and the daily video seconds, and what a caller over one of them is told."""

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

from contracts import ErrorCode
from contracts.errors import LimitName, RateLimitDetails
from edge_worker.domain.api_keys import KeyLimits
from edge_worker.domain.problems import Problem

WINDOW_SECONDS = 60
# A full key has no finished job to wait for in particular: ask again after this long.
ACTIVE_JOBS_RETRY_SECONDS = 30


@dataclass(frozen=True)
class Caller:
    """Who a client request is for: the owner of its jobs and its key's own limits."""

    owner: str
    limits: KeyLimits = field(default_factory=KeyLimits)


@dataclass(frozen=True)
class Bucket:
    """A stored token bucket: `tokens` left at `updated_at` (Unix seconds)."""

    tokens: float
    updated_at: float


@dataclass(frozen=True)
class RateState:
    """The bucket after a request, as the RateLimit headers tell it."""

    limit: int
    remaining: int
    reset_seconds: int  # until the bucket is full again
    retry_after: int | None = None  # set when the request was refused


@dataclass(frozen=True)
class OwnerLoad:
    """An owner's work in the store: unfinished jobs, those of them in the queue, and the
    video seconds of the jobs it completed since a given time."""

    active: int
    queued: int
    video_seconds: float


class QuotaExceeded(Problem):
    """429 `RATE_LIMITED`; `retry_after` is how long the caller should wait, in seconds."""

    def __init__(
        self,
        limit: LimitName,
        allowed: float,
        used: float,
        retry_after: int,
        rate: RateState | None = None,
    ) -> None:
        super().__init__(
            ErrorCode.RATE_LIMITED,
            f"over this key's {limit.value.replace('_', ' ')} limit ({allowed:g}); "
            f"retry after {retry_after} s",
            RateLimitDetails(limit=limit, allowed=allowed, used=used),
        )
        self.retry_after = retry_after
        self.rate = rate


def take_token(bucket: Bucket | None, limit: int, now: float) -> tuple[Bucket | None, RateState]:
    """Refill at `limit` per minute up to `limit` (the burst), then take one token; the new
    bucket is None when there was no token to take."""
    per_second = limit / WINDOW_SECONDS
    tokens = float(limit)
    if bucket is not None:
        elapsed = max(now - bucket.updated_at, 0.0)
        tokens = min(tokens, bucket.tokens + elapsed * per_second)
    if tokens >= 1:
        left = tokens - 1
        full_in = math.ceil((limit - left) / per_second)
        return Bucket(left, now), RateState(limit, math.floor(left), full_in)
    full_in = math.ceil((limit - tokens) / per_second)
    wait = max(math.ceil((1 - tokens) / per_second), 1)
    return None, RateState(limit, 0, full_in, retry_after=wait)


def rate_refused(state: RateState) -> QuotaExceeded:
    assert state.retry_after is not None
    return QuotaExceeded(
        LimitName.REQUESTS_PER_MINUTE, state.limit, state.limit, state.retry_after, state
    )


def day_start(now: datetime) -> datetime:
    """The UTC midnight that began `now`'s day: the daily quota counts from it."""
    return datetime.combine(now.astimezone(UTC).date(), time(), tzinfo=UTC)


def check_new_job(
    load: OwnerLoad, max_active: int, daily_video_seconds: float | None, now: datetime
) -> None:
    """Refuse one more job over the unfinished-job cap or a used-up daily quota."""
    if load.active >= max_active:
        raise QuotaExceeded(
            LimitName.ACTIVE_JOBS, max_active, load.active, ACTIVE_JOBS_RETRY_SECONDS
        )
    if daily_video_seconds is not None and load.video_seconds >= daily_video_seconds:
        midnight = day_start(now) + timedelta(days=1)
        raise QuotaExceeded(
            LimitName.DAILY_VIDEO_SECONDS,
            daily_video_seconds,
            round(load.video_seconds, 3),
            max(math.ceil((midnight - now).total_seconds()), 1),
        )
