"""`POST /generate`: create a job from a multipart upload or from direct uploads."""

from typing import Any

from litestar import Request, post
from litestar.di import NamedDependency, Provide
from pydantic import ValidationError

from contracts import ErrorCode, JobView
from contracts.media import MediaKind
from edge_worker.dependencies import provide_owner
from edge_worker.errors import ApiError
from edge_worker.multipart_form import FileRule, FormRules, read_form
from edge_worker.services import JobService
from edge_worker.uploads import GenerateFromUploads
from edge_worker.validation import PROMPT_MAX_CHARS

JSON_LIMIT = 64 * 1024


def form_rules(service: JobService) -> FormRules:
    settings = service.s.settings
    hint = (
        "; upload larger files with POST /uploads and create the job from their upload ids"
        if settings.max_inline_request_bytes
        else ""
    )
    return FormRules(
        files={
            "image": FileRule(MediaKind.IMAGE, settings.max_image_bytes),
            "audio": FileRule(MediaKind.AUDIO, settings.max_audio_bytes),
        },
        text_max_bytes={
            "prompt": PROMPT_MAX_CHARS * 4,
            "resolution": 16,
            "seed": 32,
            "quality": 16,
        },
        max_total_bytes=settings.max_request_bytes,
        too_large_hint=hint,
        discard_limit=2 * settings.max_request_bytes,
    )


async def read_json(request: Request[Any, Any, Any]) -> GenerateFromUploads:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > JSON_LIMIT:
            raise ApiError(ErrorCode.PAYLOAD_TOO_LARGE, "JSON body is larger than 64 KiB")
    try:
        return GenerateFromUploads.model_validate_json(body)
    except ValidationError as exc:
        problems = [
            {"field": ".".join(str(p) for p in err["loc"]), "message": err["msg"]}
            for err in exc.errors()
        ]
        raise ApiError(
            ErrorCode.INVALID_INPUT, "request is malformed", {"errors": problems}
        ) from None


@post(
    "/generate",
    status_code=200,
    dependencies={"owner": Provide(provide_owner, sync_to_thread=False)},
    request_max_body_size=None,
    summary="Create a job from a portrait, a speech recording and a prompt",
    description=(
        "Either `application/json` `{image_upload_id, audio_upload_id, prompt, resolution, "
        "seed, quality}` referencing files PUT through `POST /uploads`, or "
        "multipart/form-data with `image` (PNG/JPEG, <= 10 MiB), `audio` (WAV/MP3, <= 50 MiB), "
        "`prompt` (1-2000 chars) and optional `resolution` (480p|720p), `seed` and `quality` "
        "(`standard`, the default: upstream's 40 sampling steps; `fast`: a distilled LoRA at "
        "4 steps, several times quicker, lower quality). "
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
    idempotency_key = request.headers.get("idempotency-key")
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() == "application/json":
        body = await read_json(request)
        return await job_service.create_from_uploads(owner, body, idempotency_key)
    rules = form_rules(job_service)
    announced = request.headers.get("content-length")
    if announced and announced.isdigit() and int(announced) > rules.max_total_bytes:
        raise rules.too_large()
    form = await read_form(request.stream(), content_type, rules)
    try:
        return await job_service.create_from_form(owner, form, idempotency_key)
    finally:
        form.close()
