"""Usage reports (docs/API.md#usage): daily buckets of a tenant's jobs, by quality."""

from datetime import date

from pydantic import BaseModel, Field

from contracts.jobs import Quality


class UsageBucket(BaseModel):
    """The jobs created on one UTC day at one quality, and what they measured so far."""

    day: date
    quality: Quality
    jobs_created: int
    jobs_completed: int = Field(description="completed, including those whose video expired")
    jobs_failed: int
    audio_seconds: float = Field(description="input audio, as measured from its header")
    video_seconds: float = Field(description="videos produced")
    gpu_seconds: float = Field(description="the engine's wall time, as the agents report it")


class UsageReport(BaseModel):
    """What `GET /usage` returns: days without jobs have no bucket."""

    first_day: date
    last_day: date
    buckets: list[UsageBucket]


class KeyUsageBucket(UsageBucket):
    owner: str
    key_id: str | None = Field(description="None: the owner of a key from API_KEYS")
    key_name: str | None


class AdminUsageReport(BaseModel):
    """What `GET /admin/usage` returns: the same buckets, one set per key (owner)."""

    first_day: date
    last_day: date
    buckets: list[KeyUsageBucket]
