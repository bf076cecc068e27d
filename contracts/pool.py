"""`GET /pool`: the RunPod pool as its controller sees it (docs/API.md#get-pool)."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

PodStateName = Literal["starting", "busy", "idle", "draining", "stopped"]


class PoolPodView(BaseModel):
    pod_id: str
    state: PodStateName
    created_at: datetime
    uptime_seconds: float = Field(ge=0)
    last_heartbeat_at: datetime | None
    jobs_done: int = Field(ge=0)
    gpu_seconds: float = Field(ge=0)
    gpu_seconds_per_video_second: float | None = Field(
        description="measured on this pod's completed jobs"
    )
    stopped_at: datetime | None = None
    stop_reason: str | None = None


class PoolApiErrors(BaseModel):
    """RunPod calls that failed, since the pool's state was created; each retried later."""

    rate_limited: int = Field(ge=0, description="429")
    server_errors: int = Field(ge=0, description="5xx")
    unreachable: int = Field(ge=0, description="no answer: refused, reset or timed out")
    refused: int = Field(ge=0, description="any other 4xx")


class PoolView(BaseModel):
    enabled: bool
    min_pods: int
    max_pods: int | None
    pods: list[PoolPodView]
    last_decision_at: datetime | None
    last_decision: str | None
    gpu_seconds_per_video_second: float = Field(
        description="what the controller estimates with: measured, else the configured figure"
    )
    estimated_cost_per_hour_usd: float | None = Field(
        description="pods up (not stopped) times POOL_POD_HOURLY_USD; null without it"
    )
    pods_started: int = Field(ge=0)
    pods_stopped: int = Field(ge=0)
    unresponsive_stopped: int = Field(ge=0, description="stopped for no heartbeat in the grace")
    api_errors: PoolApiErrors
