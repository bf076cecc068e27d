"""Segment fan-out on the edge (docs/ARCHITECTURE.md, fan-out): the planner's two calls,
what a claim of a parent, a segment or a stitch hands out, and `advance`, which moves a
split job on after any change to it or its children.

`advance` only creates what is missing (children are inserted once, whoever races) and
ends the parent by compare-and-swap, so it is safe to run twice at once and again later:
the maintenance sweep runs it for split jobs that have not moved in a while.
"""

import logging
from datetime import datetime, timedelta

from contracts import (
    ErrorCode,
    JobView,
    PlanTask,
    QueueMessage,
    SegmentCommitRequest,
    SegmentGrant,
    SegmentPlanReply,
    SegmentPlanRequest,
    SegmentTask,
    StitchTask,
)
from contracts.errors import ConflictDetails, JobDetails, StorageDetails
from edge_worker.domain import jobs, segments
from edge_worker.domain.jobs import Job
from edge_worker.domain.problems import Problem
from edge_worker.domain.storage_keys import audio_track_key, segment_audio_key
from edge_worker.usecases.context import EdgeContext
from edge_worker.usecases.transitions import JobTransitions, TransitionRefused
from edge_worker.usecases.views import RESULT_URL_TTL, JobViews

log = logging.getLogger("edge_worker.jobs")


class FanOut:
    def __init__(self, context: EdgeContext, views: JobViews, transitions: JobTransitions) -> None:
        self.context = context
        self.views = views
        self.transitions = transitions

    async def plan_task(self, parent: Job, now: datetime) -> PlanTask:
        seen = await self.context.store.agents_seen(now - segments.AGENTS_SEEN_WINDOW)
        settings = self.context.settings
        return PlanTask(
            max_segments=parent.parallel if isinstance(parent.parallel, int) else None,
            min_seconds=settings.segment_min_seconds,
            max_seconds=settings.segment_max_seconds,
            agents_seen=max(seen, 1),
        )

    @staticmethod
    def segment_task(segment: Job) -> SegmentTask:
        assert segment.parent_id is not None and segment.segment_index is not None
        return SegmentTask(
            parent_job_id=segment.parent_id,
            index=segment.segment_index,
            count=segment.segment_count or 1,
            start_seconds=segment.segment_start_seconds or 0.0,
            end_seconds=segment.segment_end_seconds or 0.0,
        )

    async def stitch_task(self, stitch: Job, expires_at: datetime) -> StitchTask:
        assert stitch.parent_id is not None
        children = segments.Children.of(await self.context.store.children(stitch.parent_id))
        keys = [s.result_key for s in children.segments]
        if not all(keys):
            raise Problem(ErrorCode.CONFLICT, "a segment of this stitch has no result")
        parent = await self.context.store.get(stitch.parent_id)
        track = (
            audio_track_key(stitch.parent_id, parent.plan.attempt)
            if parent is not None and parent.plan is not None
            else None
        )
        if track is not None and await self.context.blobs.head(track) is None:
            track = None  # the planner died before uploading it: the stitch encodes the audio
        return StitchTask(
            parent_job_id=stitch.parent_id,
            segment_urls=[self.context.blobs.presign_get(k, expires_at) for k in keys if k],
            segment_seconds=[
                (s.segment_start_seconds or 0.0, s.segment_end_seconds or 0.0)
                for s in children.segments
            ],
            crossfade_frames=self.context.settings.seam_crossfade_frames,
            audio_seconds=stitch.segment_end_seconds or 0.0,
            audio_track_url=self.context.blobs.presign_get(track, expires_at) if track else None,
        )

    async def register_plan(self, job_id: str, request: SegmentPlanRequest) -> SegmentPlanReply:
        """Record the planner's cut points (checked) and grant a PUT URL per segment."""
        current = await self._held(job_id, request.claim_token)
        if not current.wants_plan:
            raise Problem(ErrorCode.CONFLICT, f"job {job_id} is not a parallel job being planned")
        settings = self.context.settings
        bounds = segments.check_plan(
            request.segments,
            request.audio_seconds,
            max_segments=current.parallel if isinstance(current.parallel, int) else None,
            min_seconds=settings.segment_min_seconds,
            max_audio_seconds=settings.max_audio_seconds,
        )
        plan = segments.plan_of(current, request.audio_seconds, bounds)
        now = self.context.clock.now()
        await self.transitions.transition(
            job_id,
            lambda j: jobs.record_plan(j, claim_token=request.claim_token, plan=plan, now=now),
        )
        expires = now + RESULT_URL_TTL
        grants = []
        for index in range(len(bounds)):
            key = segment_audio_key(job_id, plan.attempt, index)
            url = self.context.blobs.presign_put(key, expires, "audio/wav")
            grants.append(SegmentGrant(index=index, audio_upload_url=url, audio_key=key))
        track = self.context.blobs.presign_put(
            audio_track_key(job_id, plan.attempt), expires, "audio/mp4"
        )
        log.info("job planned", extra={"job_id": job_id, "segments": len(bounds)})
        return SegmentPlanReply(segments=grants, audio_track_upload_url=track)

    async def commit(self, job_id: str, request: SegmentCommitRequest) -> JobView:
        """Split the job by its registered plan once every segment's audio is stored. A
        repeat after the split (a lost reply) answers again and recreates nothing."""
        current = await self.context.store.get(job_id)
        if current is not None and current.is_split and not current.status.is_terminal:
            await self.advance(job_id)
            return await self.views.view(current)
        current = await self._held(job_id, request.claim_token)
        plan = current.plan
        if plan is None or plan.attempt != current.attempts:
            raise Problem(ErrorCode.CONFLICT, "register the segments before committing them")
        for index in range(len(plan.bounds)):
            key = segment_audio_key(job_id, plan.attempt, index)
            if await self.context.blobs.head(key) is None:
                raise Problem(
                    ErrorCode.STORAGE_ERROR,
                    f"segment {index}'s audio is not in storage; upload it first",
                    StorageDetails(key=key),
                )
        now = self.context.clock.now()
        job = await self.transitions.transition(
            job_id, lambda j: jobs.split(j, claim_token=request.claim_token, now=now)
        )
        log.info("job split", extra={"job_id": job_id, "segments": job.segment_count})
        await self.advance(job_id)
        return await self.views.view(job)

    async def _held(self, job_id: str, claim_token: str) -> Job:
        """The job, if `claim_token` is its current claim; else 404 or 409."""
        current = await self.context.store.get(job_id)
        if current is None:
            raise Problem(ErrorCode.JOB_NOT_FOUND, f"no job {job_id}", JobDetails(job_id=job_id))
        try:
            jobs.require_claim(current, claim_token)
        except jobs.StaleClaim as exc:
            raise Problem(
                ErrorCode.CONFLICT, str(exc), ConflictDetails(status=current.status.value)
            ) from None
        return current

    async def advance(self, parent_id: str) -> None:
        """Do what `segments.next_step` says for this split job, once."""
        store = self.context.store
        parent = await store.get(parent_id)
        if parent is None:
            return
        step = segments.next_step(parent, segments.Children.of(await store.children(parent_id)))
        now = self.context.clock.now()
        if step.create_segments:
            assert parent.plan is not None
            keys = [
                segment_audio_key(parent.id, parent.plan.attempt, i)
                for i in range(len(parent.plan.bounds))
            ]
            for child in segments.new_segments(parent, step.create_segments, keys, now):
                await self._insert(child, now)
        if step.create_stitch:
            await self._insert(segments.new_stitch(parent, now), now)
        if step.fail is not None:
            code, message = step.fail
            await self._end(
                parent_id, lambda j: jobs.fail_split(j, code=code, message=message, now=now)
            )
        if step.complete_with is not None:
            stitch = step.complete_with
            children = segments.Children.of(await store.children(parent_id))
            assert stitch.result is not None and stitch.result_key is not None
            result = stitch.result.model_copy(update={"gpu_seconds": segments.metered(children)})
            retention = timedelta(hours=self.context.settings.video_retention_hours)
            key = stitch.result_key
            await self._end(
                parent_id,
                lambda j: jobs.complete_split(
                    j, result=result, result_key=key, now=now, retention=retention
                ),
            )
        if step.cancel:
            await self.transitions.cancel_children(parent_id)

    async def _insert(self, child: Job, now: datetime) -> None:
        if await self.context.store.insert_child(child):
            await self.context.queue.send(QueueMessage(job_id=child.id, enqueued_at=now))
            log.info("job child queued", extra={"job_id": child.id, "task": child.task})

    async def _end(self, parent_id: str, change: jobs.Transition) -> None:
        """Complete or fail the parent; a loser of the race finds it ended and does nothing,
        and whoever ended it cancels what is left."""
        try:
            parent = await self.transitions.transition(parent_id, change)
        except TransitionRefused:
            return
        log.info("split job ended", extra={"job_id": parent_id, "status": parent.status.value})
        await self.transitions.cancel_children(parent_id)
