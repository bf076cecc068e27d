"""`POST /uploads`: presigned PUT URLs so large files go straight to storage."""

from typing import Any

from litestar import Request, post
from litestar.params import JSONBody

from contracts import ErrorCode
from edge_worker.http.dependencies import client_owner, client_use_cases
from edge_worker.http.openapi import documented
from edge_worker.http.rate_limit import LIMITED_CLIENT_MIDDLEWARE
from edge_worker.usecases.uploads import UploadsRequest, UploadsResponse


@post(
    "/uploads",
    status_code=200,
    middleware=LIMITED_CLIENT_MIDDLEWARE,
    **documented(
        "createUploads",
        [
            ErrorCode.INVALID_INPUT,
            ErrorCode.UNSUPPORTED_MEDIA,
            ErrorCode.PAYLOAD_TOO_LARGE,
            ErrorCode.RATE_LIMITED,
        ],
    ),
    summary="Presigned PUT URLs for the image and/or audio of a job",
    description="Declare each file's content type and size; PUT the bytes to `url` with exactly "
    "`headers`, then `POST /generate` with JSON `{image_upload_id, audio_upload_id, prompt}`. "
    "Declared sizes over the limits are refused here; the objects are checked again "
    "(size, first bytes) when the job is created.",
)
async def create_uploads(
    data: JSONBody[UploadsRequest],
    request: Request[Any, Any, Any],
) -> UploadsResponse:
    return await client_use_cases(request).uploads.grant(client_owner(request), data)
