"""Client views of jobs: status, result, list."""

from typing import Annotated

from litestar import Router, delete, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, QueryParameter

from contracts import JobList, JobView, ResultView
from edge_worker.dependencies import provide_owner
from edge_worker.services import JobService


@get("/status/{job_id:str}", summary="Status, progress, queue position and ETA of a job")
async def job_status(
    job_id: FromPath[str], owner: NamedDependency[str], job_service: NamedDependency[JobService]
) -> JobView:
    return await job_service.view(await job_service.get_owned(owner, job_id))


@get("/result/{job_id:str}", summary="A signed download URL of the finished MP4")
async def job_result(
    job_id: FromPath[str], owner: NamedDependency[str], job_service: NamedDependency[JobService]
) -> ResultView:
    return await job_service.result(owner, job_id)


@delete(
    "/jobs/{job_id:str}",
    status_code=200,
    summary="Cancel a pending or processing job",
    description="A pending job is cancelled at once; a processing job's agent is told on its "
    "next heartbeat and stops within seconds. No result is ever published for it.",
)
async def cancel_job(
    job_id: FromPath[str], owner: NamedDependency[str], job_service: NamedDependency[JobService]
) -> JobView:
    return await job_service.cancel(owner, job_id)


@get("/jobs", summary="The caller's jobs, newest first")
async def list_jobs(
    owner: NamedDependency[str],
    job_service: NamedDependency[JobService],
    limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
    cursor: FromQuery[str | None] = None,
) -> JobList:
    return await job_service.list_owned(owner, limit, cursor)


jobs_router = Router(
    path="/",
    route_handlers=[job_status, job_result, list_jobs, cancel_job],
    dependencies={"owner": Provide(provide_owner, sync_to_thread=False)},
)
