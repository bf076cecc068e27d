"""Client views of jobs: status, result, list."""

from typing import Annotated, Any

from litestar import Request, Response, Router, delete, get
from litestar.params import FromPath, QueryParameter

from contracts import ErrorCode, JobList, JobView, ResultView
from edge_worker.domain.job_events import prefer_wait
from edge_worker.http.dependencies import CLIENT_MIDDLEWARE, client_owner, client_use_cases
from edge_worker.http.json_response import ModelResponse
from edge_worker.http.openapi import PREFER_WAIT, PREFERENCE_APPLIED, documented


@get(
    "/status/{job_id:str}",
    **documented(
        "getJobStatus",
        [ErrorCode.JOB_NOT_FOUND],
        headers=[PREFER_WAIT],
        success_headers={"Preference-Applied": PREFERENCE_APPLIED},
    ),
    summary="Status, progress, queue position and ETA of a job",
    description="With `Prefer: wait=N` (1-60 s), the answer waits until the job changes, "
    "at most N seconds, and says `Preference-Applied: wait=N`.",
)
async def job_status(job_id: FromPath[str], request: Request[Any, Any, Any]) -> Response[JobView]:
    use_cases = client_use_cases(request)
    owner = client_owner(request)
    wait = prefer_wait(request.headers.getall("prefer", []))
    if wait is None:
        return ModelResponse(await use_cases.views.status(owner, job_id))
    view = await use_cases.watch.status_after_change(owner, job_id, wait)
    return ModelResponse(view, headers={"Preference-Applied": f"wait={wait}"})


@get(
    "/result/{job_id:str}",
    **documented(
        "getJobResult",
        [ErrorCode.JOB_NOT_FOUND, ErrorCode.RESULT_NOT_READY, ErrorCode.RESULT_EXPIRED],
    ),
    summary="A signed download URL of the finished MP4",
)
async def job_result(job_id: FromPath[str], request: Request[Any, Any, Any]) -> ResultView:
    return await client_use_cases(request).views.result(client_owner(request), job_id)


@delete(
    "/jobs/{job_id:str}",
    status_code=200,
    **documented("cancelJob", [ErrorCode.JOB_NOT_FOUND, ErrorCode.CONFLICT]),
    summary="Cancel a pending or processing job",
    description="A pending job is cancelled at once; a processing job's agent is told on its "
    "next heartbeat and stops within seconds. No result is ever published for it.",
)
async def cancel_job(
    job_id: FromPath[str],
    request: Request[Any, Any, Any],
) -> JobView:
    return await client_use_cases(request).transitions.cancel(client_owner(request), job_id)


@get(
    "/jobs",
    **documented("listJobs", [ErrorCode.INVALID_INPUT]),
    summary="The caller's jobs, newest first",
)
async def list_jobs(
    request: Request[Any, Any, Any],
    limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
    cursor: Annotated[
        str | None, QueryParameter(description="`next_cursor` of the previous page")
    ] = None,
    status: Annotated[
        str | None,
        QueryParameter(
            description="Only jobs in these statuses (JobStatus), comma-separated: "
            "`pending,processing`"
        ),
    ] = None,
) -> JobList:
    views = client_use_cases(request).views
    return await views.list_owned(client_owner(request), limit, cursor, status)


jobs_router = Router(
    path="/",
    route_handlers=[job_status, job_result, list_jobs, cancel_job],
    middleware=CLIENT_MIDDLEWARE,
)
