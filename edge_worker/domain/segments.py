"""Segment fan-out, plain Python: the checks on a planner's cut points, the child rows of a
split job, what the parent shows while they run and what the edge does next.

A split job (`Job.is_split`) has one child row per segment and, once every segment is
complete, one stitch child; ids and the (parent, task, index) unique index make each child
exist at most once, however many planners, commits or last segments race.
"""

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from contracts import FailureCode, JobStatus, SegmentPlanItem, SegmentView, Stage
from edge_worker.domain.jobs import Job, SegmentPlan
from edge_worker.domain.problems import invalid_input
from edge_worker.domain.storage_keys import segment_video_key, stitch_video_key, video_key

PLAN_TOLERANCE_SECONDS = 0.1
"""How far a plan's first start and last end may sit from 0 and the audio's end."""

CONTIGUITY_SECONDS = 1e-6
STITCH_SHARE = 5.0
"""Percent of a split job's progress that the stitch step stands for."""

AGENTS_SEEN_WINDOW = timedelta(minutes=10)


def check_plan(
    items: Sequence[SegmentPlanItem],
    audio_seconds: float,
    *,
    max_segments: int | None,
    min_seconds: float,
    max_audio_seconds: float,
) -> tuple[tuple[float, float], ...]:
    """The plan's bounds, or INVALID_INPUT naming what is wrong: segments numbered in order,
    contiguous, covering 0..audio_seconds, each at least `min_seconds` long. A segment may
    run past the longest length (`SEGMENT_MAX_SECONDS`): a planner never cuts inside speech,
    so where no pause comes in time it cuts at the next one, which only it can hear."""
    if audio_seconds > max_audio_seconds + PLAN_TOLERANCE_SECONDS:
        raise invalid_input(f"the audio is longer than {max_audio_seconds:g} s", "audio_seconds")
    if max_segments is not None and len(items) > max_segments:
        raise invalid_input(f"the job allows at most {max_segments} segments", "segments")
    previous_end = 0.0
    for position, item in enumerate(items):
        where = f"segments.{position}"
        if item.index != position:
            raise invalid_input("segments must be numbered 0, 1, 2 ... in order", where)
        gap = PLAN_TOLERANCE_SECONDS if position == 0 else CONTIGUITY_SECONDS
        if abs(item.start_seconds - previous_end) > gap:
            raise invalid_input("each segment must start where the previous one ends", where)
        length = item.end_seconds - item.start_seconds
        if length <= 0:
            raise invalid_input("a segment must end after it starts", where)
        if len(items) > 1 and length < min_seconds - PLAN_TOLERANCE_SECONDS:
            raise invalid_input(
                f"a segment must last at least {min_seconds:g} s, not {length:.2f}", where
            )
        previous_end = item.end_seconds
    if abs(previous_end - audio_seconds) > PLAN_TOLERANCE_SECONDS:
        raise invalid_input("the segments must cover the whole audio", "segments")
    return tuple((item.start_seconds, item.end_seconds) for item in items)


def segment_id(parent_id: str, index: int) -> str:
    return f"{parent_id}-s{index}"


def stitch_id(parent_id: str) -> str:
    return f"{parent_id}-stitch"


def _child(parent: Job, job_id: str, now: datetime) -> Job:
    """A pending child, enqueued now, with the parent's owner, portrait and settings; the
    webhook stays the parent's (its segments' changes are the parent's progress events)."""
    return replace(
        parent,
        id=job_id,
        status=JobStatus.PENDING,
        stage=Stage.QUEUED,
        progress=0.0,
        created_at=now,
        updated_at=now,
        started_at=None,
        completed_at=None,
        expires_at=None,
        heartbeat_at=None,
        attempts=0,
        error_code=None,
        error_message=None,
        claim_token=None,
        agent_id=None,
        eta_seconds=None,
        result_key=None,
        result=None,
        enqueued_at=now,
        inputs_deleted=False,
        parallel="off",
        webhook_url=None,
        webhook_events=frozenset(),
        parent_id=parent.id,
        segment_count=parent.segment_count,
        plan=None,
        version=0,
    )


def new_segments(
    parent: Job, indexes: Sequence[int], audio_keys: Sequence[str], now: datetime
) -> list[Job]:
    """The segment rows `indexes` of a split parent; `audio_keys` by index."""
    assert parent.plan is not None
    segments = []
    for index in indexes:
        start, end = parent.plan.bounds[index]
        segments.append(
            replace(
                _child(parent, segment_id(parent.id, index), now),
                task="segment",
                segment_index=index,
                segment_start_seconds=start,
                segment_end_seconds=end,
                audio_key=audio_keys[index],
                audio_etag=None,
                audio_seconds=end - start,
            )
        )
    return segments


def new_stitch(parent: Job, now: datetime) -> Job:
    """The one stitch row: it reads the parent's own audio, and sits at index
    `segment_count` so the unique index holds for it too."""
    assert parent.plan is not None
    return replace(
        _child(parent, stitch_id(parent.id), now),
        task="stitch",
        segment_index=parent.segment_count,
        segment_start_seconds=0.0,
        segment_end_seconds=parent.plan.audio_seconds,
    )


def result_key(job: Job) -> str:
    """Where the holder of a job's current attempt uploads its video."""
    if job.task == "segment":
        assert job.parent_id is not None and job.segment_index is not None
        return segment_video_key(job.parent_id, job.segment_index, job.attempts)
    if job.task == "stitch":
        assert job.parent_id is not None
        return stitch_video_key(job.parent_id, job.attempts)
    return video_key(job.id, job.attempts)


def plan_of(
    parent: Job, audio_seconds: float, bounds: tuple[tuple[float, float], ...]
) -> SegmentPlan:
    return SegmentPlan(attempt=parent.attempts, audio_seconds=audio_seconds, bounds=bounds)


@dataclass(frozen=True)
class Children:
    """A split job's child rows, sorted: its segments by index, and its stitch if any."""

    segments: list[Job]
    stitch: Job | None

    @classmethod
    def of(cls, rows: Sequence[Job]) -> "Children":
        segments = sorted((r for r in rows if r.task == "segment"), key=_index)
        stitch = next((r for r in rows if r.task == "stitch"), None)
        return cls(segments, stitch)

    @property
    def all(self) -> list[Job]:
        return [*self.segments, *([self.stitch] if self.stitch else [])]


def _index(job: Job) -> int:
    assert job.segment_index is not None
    return job.segment_index


def _seconds(job: Job) -> float:
    return (job.segment_end_seconds or 0.0) - (job.segment_start_seconds or 0.0)


def _percent(job: Job | None) -> float:
    if job is None:
        return 0.0
    return 100.0 if job.status is JobStatus.COMPLETED else job.progress


def progress(children: Children) -> float:
    """Duration-weighted mean of the segments, the stitch standing for the last
    `STITCH_SHARE` percent."""
    total = sum(_seconds(s) for s in children.segments)
    mean = sum(_seconds(s) * _percent(s) for s in children.segments) / total if total else 0.0
    share = STITCH_SHARE / 100
    return mean * (1 - share) + _percent(children.stitch) * share


def stage(children: Children) -> Stage:
    return Stage.ENCODING if children.stitch is not None else Stage.GENERATING


def segment_views(children: Children) -> list[SegmentView]:
    return [
        SegmentView(
            index=_index(s),
            status=s.status,
            stage=s.stage,
            progress=round(_percent(s), 2),
            start_seconds=s.segment_start_seconds or 0.0,
            end_seconds=s.segment_end_seconds or 0.0,
            attempts=s.attempts,
        )
        for s in children.segments
    ]


def eta_seconds(children: Children) -> float | None:
    """Until the last segment is done: each running segment's own estimate, and for each
    waiting one its length at the running ones' pace once the first of them frees an agent.
    None while no running segment has an estimate. The stitch's own estimate adds to it."""
    running = [
        s
        for s in children.segments
        if s.status is JobStatus.PROCESSING and s.eta_seconds is not None
    ]
    if children.stitch is not None and not children.stitch.status.is_terminal:
        return children.stitch.eta_seconds
    if not running:
        return None
    etas = [s.eta_seconds or 0.0 for s in running]
    pace = max(
        (s.eta_seconds or 0.0) / max(_seconds(s) * (1 - s.progress / 100), 1e-3) for s in running
    )
    waiting = [s for s in children.segments if s.status is JobStatus.PENDING]
    return max([*etas, *(min(etas) + _seconds(s) * pace for s in waiting)])


def failure_message(failed: Job) -> str:
    """Names the segment: `segment 3 of 5 (60.0-120.0 s): <its error>` (an en dash)."""
    if failed.task == "stitch":
        return f"stitching the segments: {failed.error_message or 'failed'}"
    start, end = failed.segment_start_seconds or 0.0, failed.segment_end_seconds or 0.0
    return (
        f"segment {_index(failed) + 1} of {failed.segment_count} "
        f"({start:.1f}\u2013{end:.1f} s): {failed.error_message or 'failed'}"
    )


@dataclass(frozen=True)
class NextStep:
    """What the edge does for a split job, given its children (`next_step`)."""

    create_segments: tuple[int, ...] = ()
    create_stitch: bool = False
    complete_with: Job | None = None
    fail: tuple[FailureCode, str] | None = None
    cancel: tuple[Job, ...] = ()


def next_step(parent: Job, children: Children) -> NextStep:
    """Converges whatever order things happened in: safe to ask again after any change."""
    unfinished = tuple(c for c in children.all if not c.status.is_terminal)
    if parent.status.is_terminal:
        return NextStep(cancel=unfinished)
    if not parent.is_split or parent.status is not JobStatus.PROCESSING:
        return NextStep()
    failed = next((c for c in children.all if c.status is JobStatus.FAILED), None)
    if failed is not None:
        code = failed.error_code or FailureCode.GENERATION_FAILED
        return NextStep(fail=(code, failure_message(failed)), cancel=unfinished)
    present = {_index(s) for s in children.segments}
    assert parent.segment_count is not None
    missing = tuple(i for i in range(parent.segment_count) if i not in present)
    if missing:
        return NextStep(create_segments=missing)
    if children.stitch is not None:
        done = children.stitch.status is JobStatus.COMPLETED
        return NextStep(complete_with=children.stitch if done else None)
    if all(s.status is JobStatus.COMPLETED for s in children.segments):
        return NextStep(create_stitch=True)
    return NextStep()


def metered(children: Children) -> float | None:
    """The GPU seconds a split job is metered: its segments' and its stitch's together."""
    seconds = [c.gpu_seconds for c in children.all if c.gpu_seconds is not None]
    return sum(seconds) if seconds else None
