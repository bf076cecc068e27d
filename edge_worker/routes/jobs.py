"""Client views of jobs: status, result, list."""

from typing import Annotated

from litestar import Router, delete, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, QueryParameter

from contracts import JobList, JobView, ResultView
from edge_worker.http.dependencies import provide_owner
from edge_worker.usecases.transitions import JobTransitions
from edge_worker.usecases.views import JobViews


@get("/status/{job_id:str}", summary="Status, progress, queue position and ETA of a job")
async def job_status(
    job_id: FromPath[str], owner: NamedDependency[str], views: NamedDependency[JobViews]
) -> JobView:
    return await views.status(owner, job_id)


@get("/result/{job_id:str}", summary="A signed download URL of the finished MP4")
async def job_result(
    job_id: FromPath[str], owner: NamedDependency[str], views: NamedDependency[JobViews]
) -> ResultView:
    return await views.result(owner, job_id)


@delete(
    "/jobs/{job_id:str}",
    status_code=200,
    summary="Cancel a pending or processing job",
    description="A pending job is cancelled at once; a processing job's agent is told on its "
    "next heartbeat and stops within seconds. No result is ever published for it.",
)
async def cancel_job(
    job_id: FromPath[str],
    owner: NamedDependency[str],
    transitions: NamedDependency[JobTransitions],
) -> JobView:
    return await transitions.cancel(owner, job_id)


@get("/jobs", summary="The caller's jobs, newest first")
async def list_jobs(
    owner: NamedDependency[str],
    views: NamedDependency[JobViews],
    limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
    cursor: FromQuery[str | None] = None,
) -> JobList:
    return await views.list_owned(owner, limit, cursor)


jobs_router = Router(
    path="/",
    route_handlers=[job_status, job_result, list_jobs, cancel_job],
    dependencies={"owner": Provide(provide_owner, sync_to_thread=False)},
)
