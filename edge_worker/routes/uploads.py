"""`POST /uploads`: presigned PUT URLs so large files go straight to storage."""

from litestar import post
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody

from edge_worker.http.dependencies import provide_owner
from edge_worker.usecases.uploads import Uploads, UploadsRequest, UploadsResponse


@post(
    "/uploads",
    status_code=200,
    dependencies={"owner": Provide(provide_owner, sync_to_thread=False)},
    summary="Presigned PUT URLs for the image and/or audio of a job",
    description="Declare each file's content type and size; PUT the bytes to `url` with exactly "
    "`headers`, then `POST /generate` with JSON `{image_upload_id, audio_upload_id, prompt}`. "
    "Declared sizes over the limits are refused here; the objects are checked again "
    "(size, first bytes) when the job is created.",
)
async def create_uploads(
    data: JSONBody[UploadsRequest],
    owner: NamedDependency[str],
    uploads: NamedDependency[Uploads],
) -> UploadsResponse:
    return await uploads.grant(owner, data)
