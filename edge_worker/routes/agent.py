"""The agent protocol (DESIGN.md section 4): claim, progress, complete, fail."""

from litestar import Router, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from contracts import (
    AgentFailRequest,
    ClaimRequest,
    ClaimResponse,
    CompleteRequest,
    JobView,
    ProgressReply,
    ProgressRequest,
)
from edge_worker.agent_service import AgentService
from edge_worker.dependencies import agent_guard


@post("/{job_id:str}/claim", status_code=200)
async def claim_job(
    job_id: FromPath[str],
    data: JSONBody[ClaimRequest],
    agent_service: NamedDependency[AgentService],
) -> ClaimResponse:
    return await agent_service.claim(job_id, data)


@post("/{job_id:str}/progress", status_code=200)
async def report_progress(
    job_id: FromPath[str],
    data: JSONBody[ProgressRequest],
    agent_service: NamedDependency[AgentService],
) -> ProgressReply:
    return await agent_service.progress(job_id, data)


@post("/{job_id:str}/complete", status_code=200)
async def complete_job(
    job_id: FromPath[str],
    data: JSONBody[CompleteRequest],
    agent_service: NamedDependency[AgentService],
) -> JobView:
    return await agent_service.complete(job_id, data)


@post("/{job_id:str}/fail", status_code=200)
async def fail_job(
    job_id: FromPath[str],
    data: JSONBody[AgentFailRequest],
    agent_service: NamedDependency[AgentService],
) -> JobView:
    return await agent_service.fail(job_id, data)


agent_router = Router(
    path="/agent/jobs",
    route_handlers=[claim_job, report_progress, complete_job, fail_job],
    guards=[agent_guard],
    tags=["agent"],
)
