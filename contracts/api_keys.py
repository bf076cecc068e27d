"""The admin API's key shapes (docs/API.md#admin-api): no view ever carries a key's secret
except `KeyCreated`, the one answer to create and rotate."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class KeyCreateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)
    rate_limit_per_minute: int | None = Field(default=None, ge=1)
    max_active_jobs: int | None = Field(default=None, ge=1)
    daily_video_seconds: float | None = Field(default=None, gt=0)


class KeyView(BaseModel):
    id: str
    name: str
    prefix: str = Field(description="the key's first characters, for recognition only")
    owner: str = Field(description="the tenant's id; the same across rotations")
    created_at: datetime
    last_used_at: datetime | None = Field(description="updated at most once a minute")
    expires_at: datetime | None
    revoked_at: datetime | None
    rate_limit_per_minute: int | None
    max_active_jobs: int | None
    daily_video_seconds: float | None


class KeyCreated(KeyView):
    key: str = Field(description="the secret: shown this once, stored only as a hash")


class KeyList(BaseModel):
    keys: list[KeyView]
