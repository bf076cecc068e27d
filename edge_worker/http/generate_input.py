"""`POST /generate`'s bodies: the multipart form's rules and the JSON body's reader."""

from collections.abc import AsyncIterator

from pydantic import ValidationError

from contracts import ErrorCode
from contracts.errors import FieldError, TooLargeDetails
from contracts.media import MediaKind
from edge_worker.domain.job_request import FILE_FIELDS, OPTIONAL_FILE_FIELDS, upload_id_field
from edge_worker.domain.problems import Problem, invalid_fields
from edge_worker.domain.speakers import BOXES_FIELD, MODE_FIELD
from edge_worker.domain.validation import PROMPT_MAX_CHARS
from edge_worker.domain.webhook_targets import URL_MAX_CHARS
from edge_worker.http.json_body import check_depth
from edge_worker.http.multipart_form import FileRule, FormRules
from edge_worker.settings import EdgeSettings
from edge_worker.usecases.creation import UPLOAD_ID_MAX_CHARS, GenerateFromUploads

JSON_LIMIT = 64 * 1024


def form_rules(settings: EdgeSettings) -> FormRules:
    hint = (
        "; upload larger files with POST /uploads and create the job from their upload ids"
        if settings.max_inline_request_bytes
        else ""
    )
    return FormRules(
        files={
            "image": FileRule(MediaKind.IMAGE, settings.max_image_bytes),
            "audio": FileRule(MediaKind.AUDIO, settings.max_audio_bytes),
            "video": FileRule(MediaKind.VIDEO, settings.max_video_bytes),
            "audio2": FileRule(MediaKind.AUDIO, settings.max_audio_bytes),
        },
        text_max_bytes={
            "prompt": PROMPT_MAX_CHARS * 4,
            "resolution": 16,
            "seed": 32,
            "quality": 16,
            "parallel": 16,
            **{upload_id_field(name): UPLOAD_ID_MAX_CHARS for name in FILE_FIELDS},
            "webhook_url": URL_MAX_CHARS,
            "webhook_events": 256,
            **{upload_id_field(name): UPLOAD_ID_MAX_CHARS for name in OPTIONAL_FILE_FIELDS},
            MODE_FIELD: 32,
            BOXES_FIELD: 256,
        },
        repeatable=frozenset({"webhook_events"}),
        max_total_bytes=settings.max_request_bytes,
        too_large_hint=hint,
        discard_limit=2 * settings.max_request_bytes,
    )


async def read_json(chunks: AsyncIterator[bytes]) -> GenerateFromUploads:
    body = b""
    async for chunk in chunks:
        body += chunk
        if len(body) > JSON_LIMIT:
            raise Problem(
                ErrorCode.PAYLOAD_TOO_LARGE,
                "JSON body is larger than 64 KiB",
                TooLargeDetails(limit_bytes=JSON_LIMIT),
            )
    check_depth(body)
    try:
        return GenerateFromUploads.model_validate_json(body)
    except ValidationError as exc:
        raise invalid_fields(
            [
                FieldError(field=".".join(str(p) for p in err["loc"]) or None, message=err["msg"])
                for err in exc.errors()
            ]
        ) from None
