"""`GET /health`: liveness plus a cheap check of each port, and the edge's size limits."""

from typing import Any, Literal

from litestar import Request, Response, get
from litestar.openapi import ResponseSpec

from contracts.health import HealthView, Limits
from edge_worker import __version__
from edge_worker.http.dependencies import provide_use_cases
from edge_worker.http.openapi import documented


@get(
    "/health",
    **documented(
        "getHealth",
        [],
        scheme=None,
        responses={
            503: ResponseSpec(HealthView, description="A check failed: `status` is `degraded`")
        },
    ),
    summary="Service health (no auth)",
)
async def health(request: Request[Any, Any, Any]) -> Response[HealthView]:
    context = provide_use_cases(request.app.state).context
    checks: dict[str, Literal["ok", "error"]] = {}
    try:
        await context.store.get("00000000-0000-0000-0000-000000000000")
        checks["job_store"] = "ok"
    except Exception:
        checks["job_store"] = "error"
    healthy = all(value == "ok" for value in checks.values())
    settings = context.settings
    body = HealthView(
        status="ok" if healthy else "degraded",
        version=__version__,
        checks=checks,
        limits=Limits(
            max_request_bytes=settings.max_request_bytes,
            max_image_bytes=settings.max_image_bytes,
            max_audio_bytes=settings.max_audio_bytes,
            max_audio_seconds=settings.max_audio_seconds,
            max_image_pixels=settings.max_image_pixels,
            max_video_bytes=settings.max_video_bytes,
            max_video_seconds=settings.max_video_seconds,
        ),
    )
    return Response(body, status_code=200 if healthy else 503)
