"""What clients read: a job's status, its result link, their list of jobs."""

import math
from datetime import datetime, timedelta

from contracts import ErrorCode, InputKind, JobError, JobList, JobStatus, JobView, ResultView
from contracts.errors import JobDetails, JobStateDetails
from edge_worker.domain import segments
from edge_worker.domain.jobs import Job
from edge_worker.domain.problems import Problem, invalid_input
from edge_worker.domain.validation import parse_statuses
from edge_worker.usecases.context import EdgeContext

RESULT_URL_TTL = timedelta(hours=6)


class JobViews:
    def __init__(self, context: EdgeContext) -> None:
        self.context = context

    async def get_owned(self, owner: str, job_id: str) -> Job:
        job = await self.context.store.get(job_id)
        if job is None or job.owner != owner or job.parent_id is not None:
            raise Problem(ErrorCode.JOB_NOT_FOUND, f"no job {job_id}", JobDetails(job_id=job_id))
        return job

    async def status(self, owner: str, job_id: str) -> JobView:
        return await self.view(await self.get_owned(owner, job_id))

    async def list_owned(
        self, owner: str, limit: int, cursor: str | None, status: str | None = None
    ) -> JobList:
        statuses = parse_statuses(status)
        try:
            page = await self.context.store.list_for_owner(owner, limit, cursor, statuses)
        except ValueError:
            raise invalid_input("malformed cursor", "cursor") from None
        return JobList(
            jobs=[await self.view(job) for job in page.jobs], next_cursor=page.next_cursor
        )

    async def result(self, owner: str, job_id: str) -> ResultView:
        job = await self.get_owned(owner, job_id)
        if job.status is JobStatus.EXPIRED or self._past_retention(job):
            raise Problem(
                ErrorCode.RESULT_EXPIRED, "the result was deleted after its retention period"
            )
        if (
            job.status is not JobStatus.COMPLETED
            or job.result is None
            or job.result_key is None
            or job.expires_at is None
        ):
            raise Problem(
                ErrorCode.RESULT_NOT_READY,
                f"job is {job.status}; the result exists once it is completed",
                JobStateDetails(status=job.status.value),
            )
        url, expires_at = self._result_link(job.result_key, job.expires_at)
        return ResultView(
            job_id=job.id,
            url=url,
            expires_at=expires_at,
            size_bytes=job.result.size_bytes,
            duration_seconds=job.result.duration_seconds,
            width=job.result.width,
            height=job.result.height,
        )

    def _result_link(self, key: str, result_expires_at: datetime) -> tuple[str, datetime]:
        """A download URL valid for at most `RESULT_URL_TTL`, never past the result itself."""
        expires_at = min(self.context.clock.now() + RESULT_URL_TTL, result_expires_at)
        return self.context.blobs.presign_get(key, expires_at), expires_at

    def _past_retention(self, job: Job) -> bool:
        """A result whose retention ended before the sweep marked it expired: no store signs
        a link that expired already, and the video may be gone."""
        return (
            job.status is JobStatus.COMPLETED
            and job.expires_at is not None
            and job.expires_at <= self.context.clock.now()
        )

    async def view(self, job: Job) -> JobView:
        view = await self._own_view(job)
        return await self._split_view(job, view) if job.is_split else view

    async def _own_view(self, job: Job) -> JobView:
        result_url = None
        if (
            job.status is JobStatus.COMPLETED
            and job.expires_at
            and job.result_key
            and not self._past_retention(job)
        ):
            result_url, _ = self._result_link(job.result_key, job.expires_at)
        queue_position = None
        if job.status is JobStatus.PENDING:
            queue_position = await self.context.store.count_pending_before(job)
        error = None
        if job.status is JobStatus.FAILED and job.error_code is not None:
            error = JobError(code=job.error_code, message=job.error_message or "")
        return JobView(
            job_id=job.id,
            status=job.status,
            progress=round(job.progress, 2),
            stage=job.stage,
            created_at=job.created_at,
            updated_at=job.updated_at,
            started_at=job.started_at,
            completed_at=job.completed_at,
            result_url=result_url,
            expires_at=job.expires_at,
            attempts=job.attempts,
            error=error,
            queue_position=queue_position,
            eta_seconds=_whole_seconds(job.eta_seconds)
            if job.status is JobStatus.PROCESSING
            else None,
            resolution=job.resolution,
            quality=job.quality,
            engine=job.result.engine if job.result else None,
            parallel=job.parallel,
            input_kind=InputKind.VIDEO if job.video_key else InputKind.IMAGE,
            speaker_mode=job.speaker_mode,
            speakers=job.speakers,
        )

    async def _split_view(self, job: Job, view: JobView) -> JobView:
        """A split job while it runs tells its segments' story: their weighted progress,
        the stage (encoding once stitching), the place of its first waiting segment in the
        queue and an ETA over the segments still to run."""
        children = segments.Children.of(await self.context.store.children(job.id))
        update: dict[str, object] = {"segments": segments.segment_views(children)}
        if job.status is JobStatus.PROCESSING:
            waiting = [s for s in children.segments if s.status is JobStatus.PENDING]
            eta = segments.eta_seconds(children)
            update |= {
                "progress": round(segments.progress(children), 2),
                "stage": segments.stage(children),
                "queue_position": await self.context.store.count_pending_before(waiting[0])
                if waiting
                else None,
                "eta_seconds": _whole_seconds(eta),
            }
        return view.model_copy(update=update)


def _whole_seconds(eta: float | None) -> int | None:
    """Rounded up: a job never looks closer to done than the agent estimates."""
    return None if eta is None else math.ceil(eta)
