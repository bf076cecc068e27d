"""Client views of jobs: status, result, list."""

from typing import Annotated, Any

from litestar import Request, Router, delete, get
from litestar.params import FromPath, FromQuery, QueryParameter

from contracts import JobList, JobView, ResultView
from edge_worker.http.dependencies import CLIENT_MIDDLEWARE, client_owner, client_use_cases


@get("/status/{job_id:str}", summary="Status, progress, queue position and ETA of a job")
async def job_status(job_id: FromPath[str], request: Request[Any, Any, Any]) -> JobView:
    return await client_use_cases(request).views.status(client_owner(request), job_id)


@get("/result/{job_id:str}", summary="A signed download URL of the finished MP4")
async def job_result(job_id: FromPath[str], request: Request[Any, Any, Any]) -> ResultView:
    return await client_use_cases(request).views.result(client_owner(request), job_id)


@delete(
    "/jobs/{job_id:str}",
    status_code=200,
    summary="Cancel a pending or processing job",
    description="A pending job is cancelled at once; a processing job's agent is told on its "
    "next heartbeat and stops within seconds. No result is ever published for it.",
)
async def cancel_job(
    job_id: FromPath[str],
    request: Request[Any, Any, Any],
) -> JobView:
    return await client_use_cases(request).transitions.cancel(client_owner(request), job_id)


@get("/jobs", summary="The caller's jobs, newest first")
async def list_jobs(
    request: Request[Any, Any, Any],
    limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
    cursor: FromQuery[str | None] = None,
    status: FromQuery[str | None] = None,
) -> JobList:
    views = client_use_cases(request).views
    return await views.list_owned(client_owner(request), limit, cursor, status)


jobs_router = Router(
    path="/",
    route_handlers=[job_status, job_result, list_jobs, cancel_job],
    middleware=CLIENT_MIDDLEWARE,
)
