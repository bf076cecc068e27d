"""The `infinitetalk` engine: one job skeleton over two ways of running upstream.

Every job goes the same way in both modes: probe and prepare the inputs once
(`prepare.plan_job`), report progress on one scale (`progress.JobProgress`), give upstream
until the job's time limit, stop on a cancel, then turn upstream's frames into the output
contract (`postprocess.finalize`). A `Backend` only runs upstream: `resident_mode` in the
agent's long-lived model worker, `subprocess_mode` as one process per job.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from contracts import Capability, Quality
from contracts.media import EngineName
from infinitetalk.engine import (
    CancelCheck,
    CancelledError,
    ProgressCallback,
    VideoRequest,
    VideoResult,
    require_quality,
)
from infinitetalk.media.output import video_result
from infinitetalk.settings import InfiniteTalkSettings
from infinitetalk.upstream import failures
from infinitetalk.upstream.postprocess import finalize
from infinitetalk.upstream.prepare import JobPlan, plan_job
from infinitetalk.upstream.progress import JobProgress

log = logging.getLogger(__name__)

RUN_DIR = "upstream"
"""Upstream's own working directory inside the job's."""
OUTPUT_NAME = "infinitetalk.mp4"


class Stop(StrEnum):
    """Why the agent ended a run before upstream finished."""

    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"


@dataclass(frozen=True)
class UpstreamRun:
    """One job's run of upstream, as the engine hands it to its backend."""

    plan: JobPlan
    run_dir: Path
    """Upstream's working directory, fresh for this job."""
    progress: JobProgress
    cancelled: CancelCheck
    deadline: float
    """The job's time limit on the monotonic clock."""


class Backend(Protocol):
    """One way of running upstream for a planned job."""

    def ready(self, cancelled: CancelCheck) -> None:
        """Block until upstream can take a job (a resident worker may be reloading)."""
        ...

    def run(self, run: UpstreamRun) -> Path | Stop:
        """Upstream's raw video for the run's plan, or why the agent stopped it.

        Polls `run.cancelled` and `run.deadline`; raises `EngineError` when upstream fails.
        """
        ...

    def close(self) -> None:
        """Release what the backend holds (the model worker and its GPU memory)."""
        ...


B = TypeVar("B", bound=Backend)


class UpstreamEngine(Generic[B]):
    """The `infinitetalk` engine; `backend` decides how upstream runs."""

    name = EngineName.INFINITETALK.value

    def __init__(
        self,
        settings: InfiniteTalkSettings,
        backend: B,
        *,
        fast_unavailable: str | None,
        clock: Callable[[], float] = time.monotonic,
        two_speakers: bool = False,
    ) -> None:
        self._settings = settings
        self._backend = backend
        self._fast_unavailable = fast_unavailable
        self._clock = clock
        self._two_speakers = two_speakers

    @property
    def backend(self) -> B:
        return self._backend

    def quality_unavailable(self, quality: Quality) -> str | None:
        return self._fast_unavailable if quality is Quality.FAST else None

    def capabilities(self) -> frozenset[Capability]:
        """Images and videos (upstream's `cond_video` takes both); two speakers with the
        multi weights."""
        made = {Capability.IMAGE, Capability.VIDEO}
        if self._two_speakers:
            made.add(Capability.TWO_SPEAKERS)
        return frozenset(made)

    def close(self) -> None:
        self._backend.close()

    def generate(
        self,
        request: VideoRequest,
        workdir: Path,
        on_progress: ProgressCallback,
        cancelled: CancelCheck,
    ) -> VideoResult:
        require_quality(self, request.quality)
        workdir = workdir.resolve()
        plan = plan_job(request, workdir / "inputs", self._settings)
        progress = JobProgress(
            on_progress, chunks=plan.chunks, steps=plan.sampling.steps, frames=plan.frames
        )
        progress.preparing()
        self._backend.ready(cancelled)
        run_dir = workdir / RUN_DIR
        run_dir.mkdir(parents=True)
        log.info(
            "upstream job started",
            extra={
                "seed": plan.seed,
                "quality": request.quality.value,
                "steps": plan.sampling.steps,
                "chunks": plan.chunks,
                "frames": plan.frames,
                "timeout_seconds": round(plan.timeout_seconds),
            },
        )
        deadline = self._clock() + plan.timeout_seconds
        raw = self._backend.run(UpstreamRun(plan, run_dir, progress, cancelled, deadline))
        if raw is Stop.CANCELLED:
            raise CancelledError()
        if raw is Stop.TIMED_OUT:
            raise failures.timed_out(plan.timeout_seconds, plan.audio_seconds)
        output = workdir / OUTPUT_NAME
        info = finalize(raw, plan, output)
        progress.finished()
        return video_result(output, info, self.name)
