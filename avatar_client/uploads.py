"""How a submit sends its files: inline in one multipart `/generate`, or through `/uploads`.

The server advertises its whole-body cap in `GET /health` (`limits.max_request_bytes`) and
again in a 413's `details.limit_bytes`; above it, every file goes to storage first.
"""

from typing import Any

from pydantic import BaseModel

from avatar_client.errors import PayloadTooLarge
from avatar_client.inputs import Media
from contracts.media import MAX_AUDIO_BYTES, MAX_IMAGE_BYTES, MAX_VIDEO_BYTES, MediaKind

MULTIPART_MARGIN_BYTES = 64 * 1024
"""Room for the form's text fields, boundaries and part headers around the two files."""


class ServerLimits(BaseModel):
    """`GET /health`'s `limits`; None where the server does not say (an older edge)."""

    max_request_bytes: int | None = None
    max_image_bytes: int | None = None
    max_audio_bytes: int | None = None
    max_video_bytes: int | None = None

    def file_limit(self, kind: MediaKind) -> int:
        """One file's limit: the server's, else the public default (contracts.media)."""
        if kind is MediaKind.IMAGE:
            return self.max_image_bytes or MAX_IMAGE_BYTES
        if kind is MediaKind.VIDEO:
            return self.max_video_bytes or MAX_VIDEO_BYTES
        return self.max_audio_bytes or MAX_AUDIO_BYTES


class UploadGrant(BaseModel):
    upload_id: str
    url: str
    method: str = "PUT"
    headers: dict[str, str]


class UploadGrants(BaseModel):
    image: UploadGrant | None = None
    audio: UploadGrant | None = None
    video: UploadGrant | None = None
    audio2: UploadGrant | None = None

    def of(self, media: Media) -> UploadGrant:
        grant: UploadGrant | None = getattr(self, media.field)
        if grant is None:
            raise PayloadTooLarge(f"the server granted no upload for {media.field}")
        return grant


def limits_from_health(body: Any) -> ServerLimits:
    limits = body.get("limits") if isinstance(body, dict) else None
    return ServerLimits.model_validate(limits) if isinstance(limits, dict) else ServerLimits()


def fits_inline(files: list[Media], max_request_bytes: int | None) -> bool:
    """Whether one multipart body with every file stays under the cap (unknown: try it)."""
    if max_request_bytes is None:
        return True
    return sum(media.size for media in files) + MULTIPART_MARGIN_BYTES <= max_request_bytes


def request_cap(error: PayloadTooLarge) -> int | None:
    """The whole-body cap a 413 reports; None when one file broke its own limit (`field`),
    which storage would refuse too."""
    limit = error.details.get("limit_bytes")
    if "field" in error.details or not isinstance(limit, int):
        return None
    return limit


def uploads_body(files: list[Media]) -> dict[str, Any]:
    return {
        media.field: {"content_type": media.content_type, "size_bytes": media.size}
        for media in files
    }
