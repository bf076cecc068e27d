"""Usage metering: the period a report covers, and one daily bucket of a tenant's jobs.

Buckets are by the UTC day a job was created, split by quality profile; every measure of a
job lands in the bucket of the day it was submitted, however late it finished."""

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from contracts import Quality
from edge_worker.domain.problems import invalid_input

DEFAULT_DAYS = 30
MAX_DAYS = 366
_DATE_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass(frozen=True)
class UsagePeriod:
    """Whole UTC days, `first` to `last` inclusive."""

    first: date
    last: date

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(), UTC)

    @property
    def end(self) -> datetime:
        """The first instant after the period."""
        return datetime.combine(self.last + timedelta(days=1), time(), UTC)


@dataclass(frozen=True)
class UsageRow:
    """One owner's jobs created on one day at one quality, and what they measured."""

    owner: str
    day: date
    quality: Quality
    jobs_created: int
    jobs_completed: int  # expired ones too: they completed, then their video aged out
    jobs_failed: int
    audio_seconds: float
    video_seconds: float
    gpu_seconds: float


def _day(value: str, field: str) -> date:
    """`YYYY-MM-DD` only, read without `strptime` (which the Worker would import mid-request)."""
    try:
        if _DATE_TEXT.fullmatch(value):
            return date.fromisoformat(value)
    except ValueError:
        pass
    raise invalid_input(f"{field} must be a date as YYYY-MM-DD", field)


def parse_period(first: str | None, last: str | None, today: date) -> UsagePeriod:
    """`?from=&to=`: `to` defaults to today (UTC), `from` to the 30 days that end on `to`."""
    last_day = _day(last, "to") if last else today
    first_day = _day(first, "from") if first else last_day - timedelta(days=DEFAULT_DAYS - 1)
    if first_day > last_day:
        raise invalid_input("from must not be after to", "from")
    if (last_day - first_day).days + 1 > MAX_DAYS:
        raise invalid_input(f"a usage period is at most {MAX_DAYS} days", "from")
    return UsagePeriod(first_day, last_day)
