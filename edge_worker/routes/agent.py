"""The agent protocol over HTTP (docs/ARCHITECTURE.md, agent flow): claim, progress,
complete, fail."""

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
from edge_worker.http.dependencies import agent_guard
from edge_worker.usecases.agent_protocol import AgentProtocol


@post("/{job_id:str}/claim", status_code=200)
async def claim_job(
    job_id: FromPath[str],
    data: JSONBody[ClaimRequest],
    agent_protocol: NamedDependency[AgentProtocol],
) -> ClaimResponse:
    return await agent_protocol.claim(job_id, data)


@post("/{job_id:str}/progress", status_code=200)
async def report_progress(
    job_id: FromPath[str],
    data: JSONBody[ProgressRequest],
    agent_protocol: NamedDependency[AgentProtocol],
) -> ProgressReply:
    return await agent_protocol.progress(job_id, data)


@post("/{job_id:str}/complete", status_code=200)
async def complete_job(
    job_id: FromPath[str],
    data: JSONBody[CompleteRequest],
    agent_protocol: NamedDependency[AgentProtocol],
) -> JobView:
    return await agent_protocol.complete(job_id, data)


@post("/{job_id:str}/fail", status_code=200)
async def fail_job(
    job_id: FromPath[str],
    data: JSONBody[AgentFailRequest],
    agent_protocol: NamedDependency[AgentProtocol],
) -> JobView:
    return await agent_protocol.fail(job_id, data)


agent_router = Router(
    path="/agent/jobs",
    route_handlers=[claim_job, report_progress, complete_job, fail_job],
    guards=[agent_guard],
    tags=["agent"],
)
