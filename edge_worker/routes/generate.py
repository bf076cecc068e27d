"""`POST /generate`: create a job from a multipart upload or from direct uploads."""

from typing import Any

from litestar import Request, post

from contracts import ErrorCode, JobView
from edge_worker.domain.job_request import job_request
from edge_worker.http.dependencies import client_caller, client_use_cases
from edge_worker.http.generate_input import form_rules, read_json
from edge_worker.http.multipart_form import read_form
from edge_worker.http.openapi import GENERATE_BODY, IDEMPOTENCY_KEY, JOB_ID_LINKS, documented
from edge_worker.http.rate_limit import LIMITED_CLIENT_MIDDLEWARE


@post(
    "/generate",
    status_code=200,
    middleware=LIMITED_CLIENT_MIDDLEWARE,
    request_max_body_size=None,
    **documented(
        "createJob",
        [
            ErrorCode.INVALID_INPUT,
            ErrorCode.UNSUPPORTED_MEDIA,
            ErrorCode.PAYLOAD_TOO_LARGE,
            ErrorCode.AUDIO_TOO_LONG,
            ErrorCode.IMAGE_TOO_LARGE,
            ErrorCode.VIDEO_TOO_LONG,
            ErrorCode.TWO_SPEAKERS_UNSUPPORTED,
            ErrorCode.SPEAKER_BOXES_INVALID,
            ErrorCode.CONFLICT,
            ErrorCode.IDEMPOTENCY_KEY_REUSED,
            ErrorCode.RATE_LIMITED,
        ],
        headers=[IDEMPOTENCY_KEY],
        success_links=JOB_ID_LINKS,
        request_body=GENERATE_BODY,
    ),
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
        "return the same job for 24 h. "
        "Limits per key: requests per minute (`RateLimit` headers), unfinished jobs and "
        "daily video seconds; over one, 429 `RATE_LIMITED` with `Retry-After`. "
        "Dubbing: `video` (MP4, MOV or WebM; or `video_upload_id`) instead of `image`; the "
        "output follows the audio (a shorter video holds its last frame). Two speakers: "
        "`audio2` (or `audio2_upload_id`), `speaker_mode` (`sequential`|`simultaneous`) and "
        "optional `speaker_boxes` (JSON `[[x1,y1,x2,y2],[x1,y1,x2,y2]]` in image pixels)."
    ),
)
async def generate(
    request: Request[Any, Any, Any],
) -> JobView:
    caller = client_caller(request)
    use_cases = client_use_cases(request)
    idempotency_key = request.headers.get("idempotency-key")
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() == "application/json":
        body = await read_json(request.stream())
        return await use_cases.creation.create(caller, body.job_request(), idempotency_key)
    rules = form_rules(use_cases.context.settings)
    announced = request.headers.get("content-length")
    if announced and announced.isdigit() and int(announced) > rules.max_total_bytes:
        raise rules.too_large()
    form = await read_form(request.stream(), content_type, rules)
    try:
        return await use_cases.creation.create(
            caller, job_request(form.text, form.files, form.repeated), idempotency_key
        )
    finally:
        form.close()
