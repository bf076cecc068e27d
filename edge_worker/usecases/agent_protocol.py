"""The agent protocol's use cases (docs/ARCHITECTURE.md, agent flow): claim, heartbeat,
complete, fail. Segments and stitches of a split job are jobs here too; a claim says which
task it is (`FanOut` fills in its details), and the end of one moves its parent on.

Every change goes through the job state machine as a compare-and-swap, fenced by the
claim token; repeats of a call whose reply was lost are answered, not refused.
"""

import contextlib
import logging
import secrets
from datetime import timedelta
from typing import NoReturn

from contracts import (
    AgentFailRequest,
    Capability,
    ClaimInputs,
    ClaimOutput,
    ClaimRequest,
    ClaimResponse,
    CompleteRequest,
    ErrorCode,
    FailureCode,
    JobSettings,
    JobStatus,
    JobView,
    ProgressReply,
    ProgressRequest,
    QueueMessage,
)
from contracts.agent import AgentHeartbeat, HeartbeatReply
from contracts.errors import CapabilityDetails, ConflictDetails, JobDetails, StorageDetails
from edge_worker.domain import jobs, segments
from edge_worker.domain.jobs import Job
from edge_worker.domain.problems import Problem
from edge_worker.usecases.admission import Admission
from edge_worker.usecases.context import EdgeContext
from edge_worker.usecases.fanout import FanOut
from edge_worker.usecases.transitions import JobTransitions, TransitionRefused
from edge_worker.usecases.views import RESULT_URL_TTL, JobViews

log = logging.getLogger("edge_worker.jobs")

INPUT_URL_TTL = timedelta(hours=2)
MAX_RETRY_DELAY_SECONDS = 300


class AgentProtocol:
    def __init__(
        self,
        context: EdgeContext,
        views: JobViews,
        transitions: JobTransitions,
        admission: Admission,
        fanout: FanOut,
    ) -> None:
        self.context = context
        self.views = views
        self.transitions = transitions
        self.admission = admission
        self.fanout = fanout

    def retry_delay(self, job: Job) -> int:
        """Exponential backoff between attempts: base, 2x base, 4x base ... capped at 5 min."""
        base = self.context.settings.retry_backoff_seconds
        return int(min(base * 2 ** max(job.attempts - 1, 0), MAX_RETRY_DELAY_SECONDS))

    async def claim(self, job_id: str, request: ClaimRequest) -> ClaimResponse:
        now = self.context.clock.now()
        current = await self.context.store.get(job_id)
        if current is not None and current.parent_id is not None:
            await self._refuse_orphan(current)
        if current is not None and jobs.is_reclaim(current, request.agent_id):
            job = current
        elif current is not None and (missing := _missing(current, request)):
            await self._refuse(current, missing)
        else:
            token = secrets.token_urlsafe(24)
            job = await self.transitions.transition(
                job_id,
                lambda j: jobs.claim(j, agent_id=request.agent_id, claim_token=token, now=now),
            )
            await self.admission.admit_next(job.owner)
        log.info(
            "job claimed",
            extra={"job_id": job_id, "agent_id": request.agent_id, "attempt": job.attempts},
        )
        assert job.claim_token is not None
        inputs_expire = now + INPUT_URL_TTL
        key = segments.result_key(job)

        def url(key: str | None) -> str | None:
            return self.context.blobs.presign_get(key, inputs_expire) if key else None

        response = ClaimResponse(
            job_id=job.id,
            claim_token=job.claim_token,
            attempt=job.attempts,
            inputs=ClaimInputs(
                image_url=url(job.image_key),
                audio_url=self.context.blobs.presign_get(job.audio_key, inputs_expire),
                image_etag=job.image_etag,
                audio_etag=job.audio_etag,
                video_url=url(job.video_key),
                video_etag=job.video_etag,
                audio2_url=url(job.audio2_key),
                audio2_etag=job.audio2_etag,
            ),
            output=ClaimOutput(
                upload_url=self.context.blobs.presign_put(key, now + RESULT_URL_TTL, "video/mp4"),
                key=key,
            ),
            prompt=job.prompt,
            settings=JobSettings(
                resolution=job.resolution,
                seed=job.seed,
                quality=job.quality,
                heartbeat_interval_seconds=self.context.settings.heartbeat_interval_seconds,
                parallel=job.parallel,
                speaker_mode=job.speaker_mode,
                speaker_boxes=job.speaker_boxes,
            ),
            task=job.task,
        )
        if job.wants_plan:
            plan = await self.fanout.plan_task(job, now)
            return response.model_copy(update={"task": "plan", "plan": plan})
        if job.task == "segment":
            return response.model_copy(update={"segment": self.fanout.segment_task(job)})
        if job.task == "stitch":
            stitch = await self.fanout.stitch_task(job, inputs_expire)
            return response.model_copy(update={"stitch": stitch})
        return response

    async def _refuse_orphan(self, child: Job) -> None:
        """A segment or stitch whose job ended (cancelled, failed) is cancelled, not run:
        a child created in a race with the end of its parent never reaches an agent."""
        parent = await self.context.store.get(child.parent_id or "")
        if parent is not None and not parent.status.is_terminal:
            return
        now = self.context.clock.now()
        with contextlib.suppress(TransitionRefused):  # already over
            await self.transitions.transition(child.id, lambda j: jobs.cancel(j, now=now))
        status = parent.status.value if parent else "missing"
        raise Problem(
            ErrorCode.CONFLICT,
            f"the job this {child.task} belongs to is {status}",
            ConflictDetails(status=status),
        )

    async def _refuse(self, job: Job, missing: list[Capability]) -> NoReturn:
        """The agent lacks what the job needs: counted on the job (which fails
        NO_CAPABLE_AGENT at the limit: then 409, and the agent drops the message), else
        MISSING_CAPABILITY, and the agent hands the message back for a capable one."""
        now = self.context.clock.now()
        limit = self.context.settings.max_capability_refusals
        refused = await self.transitions.transition(
            job.id, lambda j: jobs.refuse_claim(j, max_refusals=limit, now=now)
        )
        needed = sorted(need.value for need in job.needs)
        lacking = [m.value for m in missing]
        log.info(
            "claim refused: agent lacks a capability", extra={"job_id": job.id, "missing": lacking}
        )
        if refused.status is JobStatus.FAILED:
            raise Problem(
                ErrorCode.CONFLICT,
                f"job {job.id} failed: no capable agent claimed it",
                ConflictDetails(status=refused.status.value),
            )
        raise Problem(
            ErrorCode.MISSING_CAPABILITY,
            f"job {job.id} needs {', '.join(needed)}; this agent lacks {', '.join(lacking)}",
            CapabilityDetails(required=needed, missing=lacking),
        )

    async def progress(self, job_id: str, request: ProgressRequest) -> ProgressReply:
        current = await self.context.store.get(job_id)
        if current is not None and jobs.cancel_requested(current, request.claim_token):
            return ProgressReply(cancel_requested=True)
        now = self.context.clock.now()
        await self.transitions.transition(
            job_id,
            lambda j: jobs.report_progress(
                j,
                claim_token=request.claim_token,
                progress=request.progress,
                stage=request.stage,
                eta_seconds=request.eta_seconds,
                now=now,
                speakers=request.speakers,
            ),
        )
        return ProgressReply(cancel_requested=False)

    async def complete(self, job_id: str, request: CompleteRequest) -> JobView:
        current = await self.context.store.get(job_id)
        if current is None:
            raise Problem(ErrorCode.JOB_NOT_FOUND, f"no job {job_id}", JobDetails(job_id=job_id))
        if jobs.finished_by(current, request.claim_token):
            await self._advance_parent(current)
            return await self.views.view(current)
        try:
            jobs.require_claim(current, request.claim_token)
        except jobs.StaleClaim as exc:
            raise Problem(
                ErrorCode.CONFLICT, str(exc), ConflictDetails(status=current.status.value)
            ) from None
        key = segments.result_key(current)
        stored = await self.context.blobs.head(key)
        if stored is None or stored.size_bytes != request.result.size_bytes:
            raise Problem(
                ErrorCode.STORAGE_ERROR,
                "the result is not in storage with the reported size; upload it first",
                StorageDetails(key=key, stored_bytes=stored.size_bytes if stored else None),
            )
        now = self.context.clock.now()
        retention = timedelta(hours=self.context.settings.video_retention_hours)
        job = await self.transitions.transition(
            job_id,
            lambda j: jobs.complete(
                j,
                claim_token=request.claim_token,
                result=request.result,
                result_key=key,
                now=now,
                retention=retention,
            ),
        )
        log.info("job completed", extra={"job_id": job_id, "engine": request.result.engine})
        await self._advance_parent(job)
        return await self.views.view(job)

    async def _advance_parent(self, child: Job) -> None:
        if child.parent_id is not None:
            await self.fanout.advance(child.parent_id)

    async def fail(self, job_id: str, request: AgentFailRequest) -> JobView:
        current = await self.context.store.get(job_id)
        if current is not None and (
            jobs.cancel_requested(current, request.claim_token)
            or jobs.finished_by(current, request.claim_token)
        ):
            return await self.views.view(current)
        now = self.context.clock.now()
        job = await self.transitions.transition(
            job_id,
            lambda j: jobs.fail(
                j,
                claim_token=request.claim_token,
                code=request.code,
                message=request.message,
                retryable=request.retryable,
                max_attempts=self.context.settings.max_attempts,
                now=now,
            ),
        )
        if job.status is JobStatus.PENDING:
            delay = 0 if request.code is FailureCode.AGENT_SHUTDOWN else self.retry_delay(job)
            await self.context.queue.send(
                QueueMessage(job_id=job.id, enqueued_at=now), delay_seconds=delay
            )
        log.info(
            "job failed" if job.status is JobStatus.FAILED else "job requeued",
            extra={"job_id": job_id, "code": request.code.value, "attempt": job.attempts},
        )
        await self._advance_parent(job)
        return await self.views.view(job)

    async def heartbeat(self, beat: AgentHeartbeat) -> HeartbeatReply:
        """An agent between jobs: recorded on its pod, and told whether the pool drains it."""
        now = self.context.clock.now()
        busy = beat.busy or beat.job_id is not None
        drain = await self.context.pool.heartbeat(beat.pod_id, beat.agent_id, busy, now)
        if drain:
            log.info("pod told to drain", extra={"pod_id": beat.pod_id, "agent_id": beat.agent_id})
        return HeartbeatReply(drain=drain)


def _missing(job: Job, request: ClaimRequest) -> list[Capability]:
    """What a pending job needs that the agent lacks; an agent that sends no capabilities
    predates them and makes image jobs only."""
    if job.status is not JobStatus.PENDING:
        return []
    offered = set(request.capabilities or [Capability.IMAGE])
    return sorted(job.needs - offered)
