"""Edge settings, validated once at start-up from an env mapping (os.environ or Worker `env`)."""

from typing import Annotated, Literal

from pydantic import AliasChoices, Field, ValidationInfo, field_validator, model_validator
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
from contracts.settings import CaseInsensitive, EnvSettings, LogLevel


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
    job_watch_poll_seconds: float = Field(
        default=0.25,
        gt=0,
        description="GET /jobs/{id}/events and Prefer: wait re-read the job this often "
        "(one store read each; the Worker polls D1 every 1.5 s)",
    )
    event_keepalive_seconds: float = Field(
        default=15.0, gt=0, description="a `: keepalive` comment on a quiet event stream"
    )
    event_stream_max_seconds: float = Field(
        default=300.0,
        gt=0,
        description="an event stream closes after this long; clients resume with Last-Event-ID",
    )
    segment_min_seconds: float = Field(
        default=20.0, gt=0, description="parallel jobs: shortest segment a planner may cut"
    )
    segment_max_seconds: float = Field(
        default=120.0, gt=0, description="parallel jobs: longest segment a planner may cut"
    )
    seam_crossfade_frames: int = Field(
        default=0, ge=0, le=25, description="parallel jobs: frames blended at each seam"
    )
    webhook_allow_private: bool = Field(
        default=False,
        description="webhook URLs may name private, loopback or local hosts (`avatar dev` sets it)",
    )
    webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, description="one webhook attempt, connect to last byte"
    )
    webhook_retry_base_seconds: float = Field(
        default=5.0, gt=0, description="wait after a webhook's first failed attempt; doubles"
    )
    webhook_retry_cap_seconds: float = Field(
        default=300.0, gt=0, description="longest wait between two attempts of a webhook"
    )
    webhook_min_attempts: int = Field(
        default=8, ge=1, description="a webhook is given up only after this many attempts ..."
    )
    webhook_retry_span_seconds: float = Field(
        default=3600.0, ge=0, description="... made over at least this long"
    )
    webhook_progress_interval_seconds: float = Field(
        default=5.0, ge=0, description="at most one job.progress event per job this often"
    )
    webhook_secret_grace_seconds: float = Field(
        default=86400.0,
        ge=0,
        description="after a rotation, webhooks are signed with the old secret too this long",
    )
    webhook_poll_seconds: float = Field(
        default=1.0, gt=0, description="local edge: how often the webhook queue is checked"
    )
    log_level: LogLevel = "INFO"
    blob_store: Annotated[Literal["fs", "s3"], CaseInsensitive] = Field(
        default="fs",
        description="local edge: blobs in DATA_DIR/blobs (fs) or an S3-compatible bucket (s3)",
    )
    s3_endpoint_url: str | None = Field(
        default=None, description="local edge, BLOB_STORE=s3: the S3 API's URL; unset: AWS S3"
    )
    s3_bucket: str | None = Field(default=None, validate_default=True)
    s3_region: str = Field(default="auto", min_length=1)
    s3_access_key_id: str | None = Field(default=None, validate_default=True)
    s3_secret_access_key: str | None = Field(default=None, validate_default=True, repr=False)
    runpod_api_key: str | None = Field(
        default=None,
        min_length=8,
        repr=False,
        description="RunPod API key: with POOL_MAX_PODS it turns the pool controller on",
    )
    runpod_api_base: str = Field(
        default="https://rest.runpod.io/v1", description="RunPod's REST API (tests: a fake)"
    )
    pool_min_pods: int = Field(default=0, ge=0, description="pods kept up even with no work")
    pool_max_pods: int | None = Field(
        default=None, ge=1, description="the pool never has more pods; unset: controller off"
    )
    pool_target_wait_seconds: float = Field(
        default=300.0, gt=0, description="start pods until the backlog per pod is under this"
    )
    pool_idle_seconds: float = Field(
        default=600.0, ge=0, description="a pod idle this long is drained, then stopped"
    )
    pool_startup_grace_seconds: float = Field(
        default=900.0, gt=0, description="a pod silent this long (from its start) is stopped"
    )
    pool_pod_template_id: str | None = Field(
        default=None, description="RunPod template of the pods (else POOL_IMAGE and the rest)"
    )
    pool_image: str | None = Field(default=None, description="the agent's image")
    pool_gpu_type_ids: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), description="comma-separated RunPod GPU type ids, in order of preference"
    )
    pool_network_volume_id: str | None = Field(
        default=None, description="the network volume with the weights"
    )
    pool_container_disk_gb: int = Field(default=50, ge=1)
    pool_pod_env: dict[str, str] = Field(
        default_factory=dict,
        repr=False,
        description="JSON object of the pods' environment besides EDGE_URL and AGENT_TOKEN, "
        "which the edge adds (queue credentials, ENGINE=infinitetalk ...)",
    )
    pool_pod_hourly_usd: float | None = Field(
        default=None, ge=0, description="what one pod costs an hour, for GET /pool's estimate"
    )
    pool_gpu_seconds_per_video_second: float = Field(
        default=30.0,
        gt=0,
        description="the cost estimate until completed jobs have measured it",
    )
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
            self.s3_secret_access_key or "",
            self.runpod_api_key or "",
            *self.pool_pod_env.values(),
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

    @field_validator("segment_max_seconds")
    @classmethod
    def _segments_can_exist(cls, longest: float, info: ValidationInfo) -> float:
        if longest < info.data.get("segment_min_seconds", 0.0):
            raise ValueError("SEGMENT_MAX_SECONDS must be at least SEGMENT_MIN_SECONDS")
        return longest

    @field_validator("pool_gpu_type_ids", mode="before")
    @classmethod
    def _split_gpu_types(cls, ids: object) -> object:
        if isinstance(ids, str):
            return tuple(item.strip() for item in ids.split(",") if item.strip())
        return ids

    @field_validator("pool_max_pods")
    @classmethod
    def _pool_can_hold_its_floor(cls, most: int | None, info: ValidationInfo) -> int | None:
        if most is not None and most < info.data.get("pool_min_pods", 0):
            raise ValueError("POOL_MAX_PODS must be at least POOL_MIN_PODS")
        return most

    @model_validator(mode="after")
    def _pool_has_a_pod_spec(self) -> "EdgeSettings":
        if self.pool_api_key and not (
            self.pool_pod_template_id or (self.pool_image and self.pool_gpu_type_ids)
        ):
            raise ValueError(
                "the pool controller needs POOL_POD_TEMPLATE_ID, or POOL_IMAGE and "
                "POOL_GPU_TYPE_IDS"
            )
        return self

    @property
    def pool_api_key(self) -> str | None:
        """The RunPod key when the controller is on (a key and a ceiling are set), else None."""
        return self.runpod_api_key if self.pool_max_pods is not None else None

    @field_validator("api_keys")
    @classmethod
    def _keys_long_enough(cls, keys: tuple[str, ...]) -> tuple[str, ...]:
        if any(len(key) < 16 for key in keys):
            raise ValueError("every API key must be at least 16 characters")
        return keys

    @field_validator("s3_bucket", "s3_access_key_id", "s3_secret_access_key")
    @classmethod
    def _required_for_s3(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("blob_store") == "s3":
            raise ValueError("required with BLOB_STORE=s3")
        return value

    @property
    def max_request_bytes(self) -> int:
        """Whole multipart body: both files plus room for the prompt and part headers,
        or the inline cap where the runtime has one. A video or a second track sent inline
        shares it; larger ones go through `/uploads`."""
        full = self.max_image_bytes + self.max_audio_bytes + MiB
        return min(full, self.max_inline_request_bytes or full)
