"""Direct uploads: grant presigned PUT URLs, and check an uploaded object before a job
uses it. Upload ids are signed tokens (`domain.upload_tokens`), so no table is needed."""

from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from contracts.media import HEADER_SCAN_BYTES, WAV, MediaKind, image_size
from edge_worker.domain import upload_tokens
from edge_worker.domain.job_request import FIELD_KINDS
from edge_worker.domain.problems import invalid_input
from edge_worker.domain.upload_tokens import UploadTicket
from edge_worker.domain.validation import (
    check_content,
    check_size,
    check_wav_complete,
    require_format,
)
from edge_worker.settings import EdgeSettings
from edge_worker.usecases.context import EdgeContext


class DeclaredFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content_type: str = Field(
        description="image/png, image/jpeg, audio/wav, audio/mpeg, video/mp4, video/quicktime "
        "or video/webm"
    )
    size_bytes: int = Field(gt=0, description="exact size of the file you will PUT")

    @field_validator("size_bytes", mode="before")
    @classmethod
    def _an_integer(cls, value: object) -> object:
        """Litestar validates bodies with `strict=False`, which would take `true` or `"9"`."""
        if type(value) is not int:
            raise ValueError("size_bytes must be an integer")
        return value


class UploadsRequest(BaseModel):
    """Unknown fields are refused, so a misspelt one is an error rather than ignored."""

    model_config = ConfigDict(extra="forbid")

    image: DeclaredFile | None = None
    audio: DeclaredFile | None = None
    video: DeclaredFile | None = Field(default=None, description="a video to dub")
    audio2: DeclaredFile | None = Field(default=None, description="a second speaker's track")


class UploadGrant(BaseModel):
    upload_id: str
    url: str
    method: str = "PUT"
    headers: dict[str, str]
    expires_at: datetime
    max_bytes: int
    accepted_content_types: list[str]


class UploadsResponse(BaseModel):
    image: UploadGrant | None = None
    audio: UploadGrant | None = None
    video: UploadGrant | None = None
    audio2: UploadGrant | None = None


@dataclass(frozen=True)
class CheckedUpload:
    ticket: UploadTicket
    etag: str  # what the agent must find on the object: nothing replaced it since
    audio_seconds: float | None  # measured from its header, for metering (None: an image)
    picture_size: tuple[int, int] | None = None  # an image's width and height


def size_limit(settings: EdgeSettings, kind: MediaKind) -> int:
    limits = {
        MediaKind.IMAGE: settings.max_image_bytes,
        MediaKind.AUDIO: settings.max_audio_bytes,
        MediaKind.VIDEO: settings.max_video_bytes,
    }
    return limits[kind]


class Uploads:
    def __init__(self, context: EdgeContext) -> None:
        self.context = context

    async def grant(self, owner: str, request: UploadsRequest) -> UploadsResponse:
        wanted = {name: getattr(request, name) for name in FIELD_KINDS}
        if not any(wanted.values()):
            raise invalid_input("declare an image, a video, an audio file or several of them")
        settings = self.context.settings
        now = self.context.clock.now()
        grants: dict[str, UploadGrant] = {}
        for name, declared in wanted.items():
            if declared is None:
                continue
            kind = FIELD_KINDS[name]
            limit = size_limit(settings, kind)
            upload_tokens.check_declared(
                kind, declared.content_type, declared.size_bytes, limit, name
            )
            expires_at = now + upload_tokens.UPLOAD_ID_TTL
            key = upload_tokens.new_key(kind, declared.content_type, expires_at)
            ticket = UploadTicket(owner, kind, key, declared.size_bytes, expires_at)
            url_expires = now + upload_tokens.UPLOAD_URL_TTL
            grants[name] = UploadGrant(
                upload_id=upload_tokens.issue(ticket, settings.signing_secret),
                url=self.context.blobs.presign_upload(
                    key, url_expires, declared.content_type, declared.size_bytes
                ),
                headers={"Content-Type": declared.content_type, "If-None-Match": "*"},
                expires_at=url_expires,
                max_bytes=limit,
                accepted_content_types=list(upload_tokens.ACCEPTED_TYPES[kind]),
            )
        return UploadsResponse.model_validate(grants)

    async def uploaded(self, owner: str, upload_id: str, name: str) -> CheckedUpload:
        """Check an uploaded object like a multipart part: it exists, fits, and its bytes
        are the kind of media its field (`image`, `audio2`, ...) takes."""
        context = self.context
        kind = FIELD_KINDS[name]
        ticket = upload_tokens.redeem(
            upload_id, context.settings.signing_secret, owner, kind, context.clock.now(), name
        )
        field = f"{name}_upload_id"
        stored = await context.blobs.head(ticket.key)
        if stored is None:
            raise invalid_input(
                f"nothing was uploaded for {field}; PUT the file to its URL first", field
            )
        check_size(name, stored.size_bytes, size_limit(context.settings, kind))
        head = await context.blobs.read_range(ticket.key, HEADER_SCAN_BYTES)
        media = require_format(name, kind, head)
        if media is WAV:
            check_wav_complete(head, stored.size_bytes, name)
        settings = context.settings
        seconds = check_content(
            media,
            head,
            stored.size_bytes,
            settings.max_image_pixels,
            settings.max_audio_seconds,
            settings.max_video_seconds,
        )
        size = image_size(head) if kind is MediaKind.IMAGE else None
        return CheckedUpload(ticket, stored.etag, seconds, size)
