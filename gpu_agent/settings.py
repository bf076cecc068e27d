"""Agent configuration (the variables: README.md, Configuration), validated once at start-up.

Only the CLI reads the process environment; everything else receives an
`AgentSettings`, so tests and `avatar dev` can build one from any mapping.
"""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path
from typing import Annotated, ClassVar

from pydantic import AfterValidator, Field, SecretStr

from contracts.media import (
    MAX_AUDIO_BYTES,
    MAX_AUDIO_SECONDS,
    MAX_IMAGE_BYTES,
    MAX_IMAGE_PIXELS,
    MAX_VIDEO_BYTES,
    MAX_VIDEO_SECONDS,
    EngineName,
)
from contracts.settings import CODE_ONLY, CaseInsensitive, EnvSettings, LogLevel
from infinitetalk.settings import InfiniteTalkSettings

DEFAULT_CF_API_BASE = "https://api.cloudflare.com/client/v4"
DEFAULT_QUEUE_ID = "avatar-jobs"
ENGINES = tuple(EngineName)
MAX_VISIBILITY_TIMEOUT_SECONDS = 12 * 3600  # Cloudflare's ceiling
DEFAULT_SHUTDOWN_GRACE_SECONDS = 60.0
DEFAULT_IDLE_POLL_MAX_SECONDS = 3.0
MAX_SHUTDOWN_GRACE_SECONDS = 3600  # a pod asked to stop is not kept an hour


def _http_url(url: str) -> str:
    if not url.startswith(("http://", "https://")) or len(url) <= len("https://"):
        raise ValueError("must be an http:// or https:// URL")
    return url.rstrip("/")


HttpUrl = Annotated[str, AfterValidator(_http_url)]


def default_agent_id() -> str:
    """Unique enough per process to tell agents apart in the edge's logs."""
    return f"{socket.gethostname()}-{os.getpid()}"


class AgentSettings(EnvSettings):
    """Everything the agent needs; tokens are `SecretStr` so they never reach a log."""

    label = "agent"

    edge_url: HttpUrl
    agent_token: SecretStr
    cf_api_base: HttpUrl = DEFAULT_CF_API_BASE
    cf_account_id: str
    cf_queue_id: str = DEFAULT_QUEUE_ID
    cf_api_token: SecretStr
    engine: Annotated[EngineName, CaseInsensitive] = EngineName.PREVIEW
    agent_id: str = Field(default_factory=default_agent_id, min_length=1, max_length=200)
    visibility_timeout_seconds: int = Field(default=60, ge=1, le=MAX_VISIBILITY_TIMEOUT_SECONDS)
    shutdown_grace_seconds: float = Field(
        default=DEFAULT_SHUTDOWN_GRACE_SECONDS, ge=0, le=MAX_SHUTDOWN_GRACE_SECONDS
    )
    work_dir: Path = Field(default_factory=lambda: Path(tempfile.gettempdir()))
    idle_poll_max_seconds: float = Field(default=DEFAULT_IDLE_POLL_MAX_SECONDS, gt=0, le=60)
    """The longest wait between pulls of an empty queue (Cloudflare rate-limits pulls)."""
    log_level: LogLevel = "INFO"
    max_audio_seconds: float = Field(default=MAX_AUDIO_SECONDS, gt=0)
    """Longest speech, measured by decoding it (the edge judged it by its headers)."""
    max_image_pixels: int = Field(default=MAX_IMAGE_PIXELS, gt=0)
    """Largest portrait (width x height), judged from its header before decoding."""
    runpod_pod_id: str | None = Field(default=None, min_length=1, max_length=200)
    """Set by RunPod inside every pod: heartbeats name the pod, so the pool knows its agent."""
    idle_heartbeat_seconds: float = Field(default=30.0, gt=0, le=300)
    """Between jobs the agent tells the edge it is alive this often (and learns of a drain)."""
    max_video_bytes: int = Field(default=MAX_VIDEO_BYTES, gt=0)
    """Largest video to dub: the edge's MAX_VIDEO_BYTES, so no accepted video is refused."""
    max_video_seconds: float = Field(default=MAX_VIDEO_SECONDS, gt=0)
    """Longest video to dub, measured by decoding it."""
    infinitetalk: Annotated[InfiniteTalkSettings | None, CODE_ONLY] = None
    """The InfiniteTalk engine's settings; the CLI reads them when that engine is chosen."""
    # Not settings: the public limits (docs/API.md), kept here so the agent never fills its
    # disk with an input the edge should have refused.
    max_image_bytes: ClassVar[int] = MAX_IMAGE_BYTES
    max_audio_bytes: ClassVar[int] = MAX_AUDIO_BYTES
    claim_retry_delay_seconds: ClassVar[int] = 10

    def secrets(self) -> list[str]:
        """Values that must never appear in output (fed to the log redactor)."""
        return [self.agent_token.get_secret_value(), self.cf_api_token.get_secret_value()]
