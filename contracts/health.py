"""`GET /health`'s reply: liveness, the checks behind it, and the limits clients size to."""

from typing import Literal

from pydantic import BaseModel, Field


class Limits(BaseModel):
    """The sizes this edge accepts, so clients choose inline or `/uploads` without guessing."""

    max_request_bytes: int = Field(
        description="largest multipart `POST /generate` body; bigger files go through /uploads"
    )
    max_image_bytes: int
    max_audio_bytes: int
    max_audio_seconds: float = Field(description="longest speech, read from the file's headers")
    max_image_pixels: int = Field(description="largest portrait, width x height")
    max_video_bytes: int | None = Field(
        default=None, description="largest video to dub (None from edges older than dubbing)"
    )
    max_video_seconds: float | None = Field(default=None, description="longest video to dub")


class HealthView(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    checks: dict[str, Literal["ok", "error"]]
    limits: Limits
