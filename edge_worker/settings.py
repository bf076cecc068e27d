"""Edge settings, validated once at start-up from an env mapping (os.environ or Worker `env`)."""

from typing import Annotated

from pydantic import AliasChoices, Field, ValidationInfo, field_validator
from pydantic_settings import NoDecode

from contracts.media import (
    MAX_AUDIO_BYTES,
    MAX_AUDIO_SECONDS,
    MAX_IMAGE_BYTES,
    MAX_IMAGE_PIXELS,
    MAX_VIDEO_BYTES,
    MAX_VIDEO_SECONDS,
    MiB,
)
from contracts.settings import EnvSettings, LogLevel


class EdgeSettings(EnvSettings):
    label = "edge"

    api_keys: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        validation_alias=AliasChoices("API_KEYS", "API_KEY"),
        description="comma-separated bootstrap keys; stored keys need none (ADMIN_TOKEN)",
    )
    agent_token: str = Field(min_length=16)
    api_key_pepper: str = Field(
        min_length=16,
        description="HMAC key of owner ids; changing it gives every API key a new owner",
    )
    admin_token: str | None = Field(
        default=None,
        min_length=16,
        validate_default=True,
        description="guards the admin API (/admin/keys); without it the admin API answers 404",
    )
    cf_api_token: str | None = Field(
        default=None,
        min_length=16,
        description="guards the local queue emulator only; on Cloudflare the queue API is theirs",
    )
    cf_account_id: str = "local"
    cf_queue_id: str = "avatar-jobs"
    public_url: str = "http://127.0.0.1:8787"
    video_retention_hours: float = Field(default=6.0, gt=0)
    heartbeat_timeout_seconds: float = Field(default=120.0, gt=0)
    heartbeat_interval_seconds: float = Field(default=15.0, gt=0)
    max_attempts: int = Field(default=3, ge=1)
    retry_backoff_seconds: float = Field(default=5.0, ge=0, description="first retry delay")
    maintenance_interval_seconds: float = Field(default=60.0, gt=0)
    pending_requeue_seconds: float = Field(
        default=900.0, gt=0, description="re-send a pending job's message after this long"
    )
    queue_visibility_timeout_seconds: float = Field(default=60.0, gt=0)
    queue_max_retries: int = Field(default=3, ge=0)
    max_image_bytes: int = Field(default=MAX_IMAGE_BYTES, gt=0)
    max_audio_bytes: int = Field(default=MAX_AUDIO_BYTES, gt=0)
    max_audio_seconds: float = Field(
        default=MAX_AUDIO_SECONDS, gt=0, description="longest speech, read from its headers"
    )
    max_image_pixels: int = Field(
        default=MAX_IMAGE_PIXELS, gt=0, description="largest portrait (width x height)"
    )
    max_result_bytes: int = Field(
        default=4096 * MiB, gt=0, description="local edge: largest result an agent may upload"
    )
    max_inline_request_bytes: int | None = Field(
        default=None,
        gt=0,
        description="cap on a multipart /generate body; the Worker's ASGI bridge buffers "
        "whole bodies in a 128 MB isolate, so it sets this and points larger files to /uploads",
    )
    signing_secret: str = Field(
        min_length=16,
        repr=False,
        description="HMAC key of upload ids and local signed URLs; never the agent token",
    )
    http_header_timeout_seconds: float = Field(
        default=10.0, gt=0, description="local edge: time to send a request's headers"
    )
    http_body_timeout_seconds: float = Field(
        default=30.0, gt=0, description="local edge: longest pause in a request body, then 408"
    )
    http_keep_alive_seconds: int = Field(
        default=5, ge=1, description="local edge: an idle keep-alive connection is closed"
    )
    http_max_connections: int = Field(
        default=200, ge=1, description="local edge: requests beyond it get 503"
    )
    http_max_header_bytes: int = Field(
        default=16 * 1024, ge=1024, description="local edge: request line and headers"
    )
    rate_limit_per_minute: int = Field(
        default=60, ge=1, description="POST /generate and /uploads per key; a key's own overrides"
    )
    max_active_jobs_per_key: int = Field(
        default=20, ge=1, description="pending + processing jobs per key; a key's own overrides"
    )
    queued_jobs_per_key: int = Field(
        default=4, ge=1, description="a key's pending jobs in the queue; the rest wait in D1"
    )
    log_level: LogLevel = "INFO"
    max_video_bytes: int = Field(
        default=MAX_VIDEO_BYTES, gt=0, description="largest video to dub (inline or uploaded)"
    )
    max_video_seconds: float = Field(
        default=MAX_VIDEO_SECONDS, gt=0, description="longest video to dub, from its header"
    )
    max_capability_refusals: int = Field(
        default=10,
        ge=1,
        description="claims refused for want of a capability before a job fails NO_CAPABLE_AGENT",
    )

    def secrets(self) -> list[str]:
        """Values that must never appear in output (fed to the log redactor)."""
        return [
            *self.api_keys,
            self.agent_token,
            self.api_key_pepper,
            self.signing_secret,
            self.cf_api_token or "",
            self.admin_token or "",
        ]

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, keys: object) -> object:
        if isinstance(keys, str):
            return tuple(key.strip() for key in keys.split(",") if key.strip())
        return keys

    @field_validator("admin_token")
    @classmethod
    def _some_key_can_exist(cls, token: str | None, info: ValidationInfo) -> str | None:
        """Without bootstrap keys, stored keys are the only ones: they need the admin API."""
        if token is None and not info.data.get("api_keys", ("invalid",)):
            raise ValueError(
                "set API_KEYS (bootstrap client keys), or ADMIN_TOKEN to create stored keys "
                "with avatar-admin"
            )
        return token

    @field_validator("api_keys")
    @classmethod
    def _keys_long_enough(cls, keys: tuple[str, ...]) -> tuple[str, ...]:
        if any(len(key) < 16 for key in keys):
            raise ValueError("every API key must be at least 16 characters")
        return keys

    @property
    def max_request_bytes(self) -> int:
        """Whole multipart body: both files plus room for the prompt and part headers,
        or the inline cap where the runtime has one. A video or a second track sent inline
        shares it; larger ones go through `/uploads`."""
        full = self.max_image_bytes + self.max_audio_bytes + MiB
        return min(full, self.max_inline_request_bytes or full)
