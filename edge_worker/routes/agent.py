"""The agent protocol over HTTP (docs/ARCHITECTURE.md, agent flow): claim, progress,
complete, fail, a planner's registration and commit of a parallel job's segments, and an
idle agent's heartbeat (which tells a pod the pool drains to stop pulling)."""

from litestar import Router, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from contracts import (
    AgentFailRequest,
    ClaimRequest,
    ClaimResponse,
    CompleteRequest,
    ErrorCode,
    JobView,
    ProgressReply,
    ProgressRequest,
    SegmentCommitRequest,
    SegmentPlanReply,
    SegmentPlanRequest,
)
from contracts.agent import AgentHeartbeat, HeartbeatReply
from edge_worker.http.dependencies import agent_guard
from edge_worker.http.openapi import AGENT_SCHEME, documented
from edge_worker.usecases.agent_protocol import AgentProtocol

# A body the edge cannot read or over its size, a job that is not there, a stale claim token
# or a state that does not allow the change.
_ERRORS = (
    ErrorCode.INVALID_INPUT,
    ErrorCode.PAYLOAD_TOO_LARGE,
    ErrorCode.JOB_NOT_FOUND,
    ErrorCode.CONFLICT,
)


@post(
    "/{job_id:str}/claim",
    status_code=200,
    **documented("claimJob", [*_ERRORS, ErrorCode.MISSING_CAPABILITY], scheme=AGENT_SCHEME),
    summary="Claim a pending job: its inputs' URLs, the upload URL and a claim token",
)
async def claim_job(
    job_id: FromPath[str],
    data: JSONBody[ClaimRequest],
    agent_protocol: NamedDependency[AgentProtocol],
) -> ClaimResponse:
    return await agent_protocol.claim(job_id, data)


@post(
    "/{job_id:str}/progress",
    status_code=200,
    **documented("reportProgress", _ERRORS, scheme=AGENT_SCHEME),
    summary="Heartbeat with progress; the reply says whether the job was cancelled",
)
async def report_progress(
    job_id: FromPath[str],
    data: JSONBody[ProgressRequest],
    agent_protocol: NamedDependency[AgentProtocol],
) -> ProgressReply:
    return await agent_protocol.progress(job_id, data)


@post(
    "/{job_id:str}/complete",
    status_code=200,
    **documented("completeJob", [*_ERRORS, ErrorCode.STORAGE_ERROR], scheme=AGENT_SCHEME),
    summary="Publish the result uploaded to the claim's upload URL",
)
async def complete_job(
    job_id: FromPath[str],
    data: JSONBody[CompleteRequest],
    agent_protocol: NamedDependency[AgentProtocol],
) -> JobView:
    return await agent_protocol.complete(job_id, data)


@post(
    "/{job_id:str}/fail",
    status_code=200,
    **documented("failJob", _ERRORS, scheme=AGENT_SCHEME),
    summary="Report a failure: the job is retried or failed",
)
async def fail_job(
    job_id: FromPath[str],
    data: JSONBody[AgentFailRequest],
    agent_protocol: NamedDependency[AgentProtocol],
) -> JobView:
    return await agent_protocol.fail(job_id, data)


@post(
    "/{job_id:str}/segments",
    status_code=200,
    **documented("registerSegments", _ERRORS, scheme=AGENT_SCHEME),
    summary="Register a parallel job's segments (the plan); get a PUT URL per segment's audio",
)
async def register_segments(
    job_id: FromPath[str],
    data: JSONBody[SegmentPlanRequest],
    agent_protocol: NamedDependency[AgentProtocol],
) -> SegmentPlanReply:
    return await agent_protocol.fanout.register_plan(job_id, data)


@post(
    "/{job_id:str}/segments/commit",
    status_code=200,
    **documented("commitSegments", [*_ERRORS, ErrorCode.STORAGE_ERROR], scheme=AGENT_SCHEME),
    summary="Split the job by its registered segments once their audio is uploaded",
)
async def commit_segments(
    job_id: FromPath[str],
    data: JSONBody[SegmentCommitRequest],
    agent_protocol: NamedDependency[AgentProtocol],
) -> JobView:
    return await agent_protocol.fanout.commit(job_id, data)


@post(
    "/heartbeat",
    status_code=200,
    **documented("agentHeartbeat", _ERRORS[:2], scheme=AGENT_SCHEME),
    summary="An idle agent's sign of life, with its RunPod pod; the reply says drain or not",
)
async def agent_heartbeat(
    data: JSONBody[AgentHeartbeat], agent_protocol: NamedDependency[AgentProtocol]
) -> HeartbeatReply:
    return await agent_protocol.heartbeat(data)


jobs_router = Router(
    path="/jobs",
    route_handlers=[
        claim_job,
        report_progress,
        complete_job,
        fail_job,
        register_segments,
        commit_segments,
    ],
)
agent_router = Router(
    path="/agent",
    route_handlers=[jobs_router, agent_heartbeat],
    guards=[agent_guard],
    tags=["agent"],
)
