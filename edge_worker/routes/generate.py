"""`POST /generate`: the multipart upload that creates a job."""

from typing import Any

from litestar import Request, post
from litestar.di import NamedDependency, Provide

from contracts import ErrorCode, JobView
from edge_worker.dependencies import provide_owner
from edge_worker.errors import ApiError
from edge_worker.multipart_form import FileRule, FormRules, read_form
from edge_worker.services import JobService
from edge_worker.validation import PROMPT_MAX_CHARS, MediaKind


def form_rules(service: JobService) -> FormRules:
    settings = service.s.settings
    return FormRules(
        files={
            "image": FileRule(MediaKind.IMAGE, settings.max_image_bytes),
            "audio": FileRule(MediaKind.AUDIO, settings.max_audio_bytes),
        },
        text_max_bytes={"prompt": PROMPT_MAX_CHARS * 4, "resolution": 16, "seed": 32},
        discard_limit=2 * settings.max_request_bytes,
    )


@post(
    "/generate",
    status_code=200,
    dependencies={"owner": Provide(provide_owner, sync_to_thread=False)},
    request_max_body_size=None,
    summary="Create a job from a portrait, a speech recording and a prompt",
    description=(
        "multipart/form-data with `image` (PNG/JPEG, <= 10 MiB), `audio` (WAV/MP3, <= 50 MiB), "
        "`prompt` (1-2000 chars) and optional `resolution` (480p|720p) and `seed`. "
        "Formats are judged by content, and limits are enforced while the body streams in. "
        "Send an `Idempotency-Key` header to make retries safe: the same key and request "
        "return the same job for 24 h."
    ),
)
async def generate(
    request: Request[Any, Any, Any],
    owner: NamedDependency[str],
    job_service: NamedDependency[JobService],
) -> JobView:
    limit = job_service.s.settings.max_request_bytes
    announced = request.headers.get("content-length")
    if announced and announced.isdigit() and int(announced) > limit:
        raise ApiError(
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"request body is larger than {limit // (1024 * 1024)} MiB",
            {"limit_bytes": limit},
        )
    form = await read_form(
        request.stream(), request.headers.get("content-type"), form_rules(job_service)
    )
    try:
        return await job_service.create_from_form(
            owner, form, request.headers.get("idempotency-key")
        )
    finally:
        form.close()
