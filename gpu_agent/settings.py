"""Agent configuration (DESIGN.md section 7), validated once at start-up.

Only the CLI reads the process environment; everything else receives an
`AgentSettings`, so tests and `avatar dev` can build one from any mapping.
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from contracts.media import MAX_AUDIO_BYTES, MAX_IMAGE_BYTES, EngineName
from infinitetalk.settings import InfiniteTalkSettings

DEFAULT_CF_API_BASE = "https://api.cloudflare.com/client/v4"
DEFAULT_QUEUE_ID = "avatar-jobs"
ENGINES = tuple(EngineName)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
MAX_VISIBILITY_TIMEOUT_SECONDS = 12 * 3600  # Cloudflare's ceiling
DEFAULT_SHUTDOWN_GRACE_SECONDS = 60.0
MAX_SHUTDOWN_GRACE_SECONDS = 3600  # a pod asked to stop is not kept an hour


class SettingsError(ValueError):
    """Raised with every missing or malformed variable named, so one restart fixes all."""

    def __init__(self, problems: Mapping[str, str]) -> None:
        self.problems = dict(problems)
        detail = "; ".join(f"{name}: {why}" for name, why in self.problems.items())
        super().__init__(f"invalid agent settings: {detail}")


def default_agent_id() -> str:
    """Unique enough per process to tell agents apart in the edge's logs."""
    return f"{socket.gethostname()}-{os.getpid()}"


class AgentSettings(BaseModel):
    """Everything the agent needs; tokens are `SecretStr` so they never reach a log."""

    model_config = ConfigDict(frozen=True)

    edge_url: str
    agent_token: SecretStr
    cf_api_base: str = DEFAULT_CF_API_BASE
    cf_account_id: str
    cf_queue_id: str = DEFAULT_QUEUE_ID
    cf_api_token: SecretStr
    engine: str = "preview"
    agent_id: str = Field(default_factory=default_agent_id, min_length=1, max_length=200)
    visibility_timeout_seconds: int = Field(default=60, ge=1, le=MAX_VISIBILITY_TIMEOUT_SECONDS)
    shutdown_grace_seconds: float = Field(
        default=DEFAULT_SHUTDOWN_GRACE_SECONDS, ge=0, le=MAX_SHUTDOWN_GRACE_SECONDS
    )
    work_dir: Path = Field(default_factory=lambda: Path(tempfile.gettempdir()))
    log_level: str = "INFO"
    infinitetalk: InfiniteTalkSettings | None = None
    """The InfiniteTalk engine's settings; the CLI reads them when that engine is chosen."""
    # Not environment settings: the public limits of DESIGN.md section 3, kept here so
    # the agent never fills its disk with an input the edge should have refused.
    max_image_bytes: int = MAX_IMAGE_BYTES
    max_audio_bytes: int = MAX_AUDIO_BYTES
    claim_retry_delay_seconds: int = 10

    def secrets(self) -> list[str]:
        """Values that must never appear in output (fed to the log redactor)."""
        return [self.agent_token.get_secret_value(), self.cf_api_token.get_secret_value()]

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AgentSettings:
        """Build settings from environment-style strings; blank counts as unset."""
        values: dict[str, object] = {}
        problems: dict[str, str] = {}

        def get(name: str) -> str | None:
            raw = env.get(name)
            if raw is None or not raw.strip():
                return None
            return raw.strip()

        for name in ("EDGE_URL", "AGENT_TOKEN", "CF_ACCOUNT_ID", "CF_API_TOKEN"):
            if get(name) is None:
                problems[name] = "missing"

        for name, field in (("EDGE_URL", "edge_url"), ("CF_API_BASE", "cf_api_base")):
            url = get(name)
            if url is None:
                continue
            if not url.startswith(("http://", "https://")) or len(url) <= len("https://"):
                problems[name] = "must be an http:// or https:// URL"
            else:
                values[field] = url.rstrip("/")

        for name, field in (
            ("AGENT_TOKEN", "agent_token"),
            ("CF_API_TOKEN", "cf_api_token"),
            ("CF_ACCOUNT_ID", "cf_account_id"),
            ("CF_QUEUE_ID", "cf_queue_id"),
            ("WORK_DIR", "work_dir"),
        ):
            value = get(name)
            if value is not None:
                values[field] = value

        engine = get("ENGINE")
        if engine is not None:
            if engine.lower() in ENGINES:
                values["engine"] = engine.lower()
            else:
                problems["ENGINE"] = f"must be one of {', '.join(ENGINES)}"

        agent_id = get("AGENT_ID")
        if agent_id is not None:
            if len(agent_id) > 200:
                problems["AGENT_ID"] = "must be at most 200 characters"
            else:
                values["agent_id"] = agent_id

        timeout = get("VISIBILITY_TIMEOUT_SECONDS")
        if timeout is not None:
            try:
                seconds = int(timeout)
            except ValueError:
                seconds = 0
            if not 1 <= seconds <= MAX_VISIBILITY_TIMEOUT_SECONDS:
                problems["VISIBILITY_TIMEOUT_SECONDS"] = (
                    f"must be an integer from 1 to {MAX_VISIBILITY_TIMEOUT_SECONDS}"
                )
            else:
                values["visibility_timeout_seconds"] = seconds

        grace = get("SHUTDOWN_GRACE_SECONDS")
        if grace is not None:
            try:
                grace_seconds = float(grace)
            except ValueError:
                grace_seconds = -1.0
            if not 0 <= grace_seconds <= MAX_SHUTDOWN_GRACE_SECONDS:  # NaN fails this too
                problems["SHUTDOWN_GRACE_SECONDS"] = (
                    f"must be a number of seconds from 0 to {MAX_SHUTDOWN_GRACE_SECONDS}"
                )
            else:
                values["shutdown_grace_seconds"] = grace_seconds

        level = get("LOG_LEVEL")
        if level is not None:
            if level.upper() in LOG_LEVELS:
                values["log_level"] = level.upper()
            else:
                problems["LOG_LEVEL"] = f"must be one of {', '.join(LOG_LEVELS)}"

        if problems:
            raise SettingsError(problems)
        return cls.model_validate(values)
