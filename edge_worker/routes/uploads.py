"""`POST /uploads`: presigned PUT URLs so large files go straight to storage."""

from litestar import post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from edge_worker.http.dependencies import CLIENT_DEPENDENCIES
from edge_worker.usecases.uploads import UploadsRequest, UploadsResponse
from edge_worker.usecases.wiring import UseCases


@post(
    "/uploads",
    status_code=200,
    dependencies=CLIENT_DEPENDENCIES,
    summary="Presigned PUT URLs for the image and/or audio of a job",
    description="Declare each file's content type and size; PUT the bytes to `url` with exactly "
    "`headers`, then `POST /generate` with JSON `{image_upload_id, audio_upload_id, prompt}`. "
    "Declared sizes over the limits are refused here; the objects are checked again "
    "(size, first bytes) when the job is created.",
)
async def create_uploads(
    data: JSONBody[UploadsRequest],
    owner: NamedDependency[str],
    use_cases: NamedDependency[UseCases],
) -> UploadsResponse:
    return await use_cases.uploads.grant(owner, data)
