"""One claimed job, from the claim to its one final report.

The job runs the pipeline under a heartbeat, then `_decide` turns what happened into
one ending (completed, planned, failed or stopped) and `_report` tells the edge: complete,
fail, or nothing when a parallel job's plan was committed (the edge runs its segments)
or the job was stopped because the edge already knows (cancel
requested, stale claim, job gone) or is unreachable and requeues the job itself once
the heartbeat times out. A job stopped for a shutdown is handed back with a
retryable `/fail`, so it is requeued at once.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from contracts import (
    AgentFailRequest,
    ClaimResponse,
    CompleteRequest,
    FailureCode,
    ProgressReply,
    ProgressRequest,
    ResultMetadata,
)
from gpu_agent.edge_client import ClaimConflict, EdgeClient, EdgeError, JobGone
from gpu_agent.job_log import JobLog
from gpu_agent.outcome import Outcome
from gpu_agent.pipeline import JobFailed, JobFailure, Pipeline, SegmentsQueued
from gpu_agent.progress import CancelSignal, Heartbeat, ProgressReporter, Snapshot
from gpu_agent.retry import HEARTBEAT_RETRY, RetryPolicy

INTERNAL_ERROR_MESSAGE = "internal error in the GPU agent"
SHUTDOWN_MESSAGE = "agent shutting down"
MAX_FAIL_MESSAGE = 2000
INTERNAL_FAILURE = JobFailure(FailureCode.INTERNAL_ERROR, INTERNAL_ERROR_MESSAGE, retryable=True)
SHUTDOWN_FAILURE = JobFailure(FailureCode.AGENT_SHUTDOWN, SHUTDOWN_MESSAGE, retryable=True)


@dataclass(frozen=True)
class ReportPacing:
    """How progress reaches the edge, and when an unreachable edge ends the job.

    `edge_lost_after_seconds` is the edge's HEARTBEAT_TIMEOUT_SECONDS (120) plus one
    maintenance interval (60): by then the edge has re-enqueued the job, so running on
    would only duplicate the work of the agent that now owns it.
    """

    progress_min_interval: float = 1.0
    edge_lost_after_seconds: float = 180.0
    heartbeat_retry: RetryPolicy = HEARTBEAT_RETRY


@dataclass(frozen=True)
class Completed:
    result: ResultMetadata


@dataclass(frozen=True)
class Failed:
    failure: JobFailure


@dataclass(frozen=True)
class Planned:
    """A parallel job's plan was committed: the edge runs its segments, nothing to report."""

    segments: int


@dataclass(frozen=True)
class Stopped:
    reason: str | None


Ending = Completed | Planned | Failed | Stopped


class _Report(StrEnum):
    DELIVERED = "delivered"
    STALE = "stale"
    UNDELIVERED = "undelivered"


@dataclass(frozen=True)
class ClaimedJobFactory:
    """What every claimed job shares: the edge, the pipeline, the scratch space, pacing."""

    edge: EdgeClient
    pipeline: Pipeline
    work_dir: Path
    pacing: ReportPacing = field(default_factory=ReportPacing)
    clock: Callable[[], float] = time.monotonic

    def start(self, claim: ClaimResponse, log: JobLog) -> ClaimedJob:
        return ClaimedJob(claim, log, self)


class ClaimedJob:
    """Runs once; `stop` (any thread) interrupts it for a shutdown."""

    def __init__(self, claim: ClaimResponse, log: JobLog, factory: ClaimedJobFactory) -> None:
        self._claim = claim
        self._log = log
        self._edge = factory.edge
        self._pipeline = factory.pipeline
        self._work_dir = factory.work_dir
        self._clock = factory.clock
        self._cancel = CancelSignal()
        self._reporter = ProgressReporter(
            self._send_progress,
            self._cancel,
            heartbeat_interval=min(claim.settings.heartbeat_interval_seconds, 30.0),
            lost_after=factory.pacing.edge_lost_after_seconds,
            min_interval=factory.pacing.progress_min_interval,
            retry=factory.pacing.heartbeat_retry,
            clock=factory.clock,
        )

    def stop(self) -> None:
        """Stop for a shutdown; a job whose upload is done still completes."""
        self._cancel.set(CancelSignal.SHUTDOWN)

    def run(self) -> Outcome:
        started = self._clock()
        return self._report(self._decide(), started)

    def _decide(self) -> Ending:
        """Run the pipeline in a scratch directory and say how the job ends."""
        try:
            self._work_dir.mkdir(parents=True, exist_ok=True)
            scratch = Path(tempfile.mkdtemp(prefix="job-", dir=self._work_dir))
        except OSError:
            return self._crashed()
        try:
            with Heartbeat(self._reporter):
                result = self._pipeline.run(
                    self._claim, scratch, self._cancel, self._reporter.update, self._log
                )
        except JobFailed as exc:
            return self._failed(exc.failure.without_paths(scratch))
        except Exception:
            return self._crashed()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        # A shutdown that lands after the upload still completes: the work is done.
        if result is None or self._cancel.reason not in (None, CancelSignal.SHUTDOWN):
            return self._stopped()
        if isinstance(result, SegmentsQueued):
            return Planned(result.count)
        return Completed(result)

    def _failed(self, failure: JobFailure) -> Ending:
        if self._cancel.is_set():  # an error after a stop is part of stopping
            return self._stopped()
        self._log.warning(
            "job failed",
            extra={
                "code": failure.code.value,
                "retryable": failure.retryable,
                "error": failure.message,
            },
        )
        return Failed(failure)

    def _crashed(self) -> Ending:
        """Called while handling an unexpected error: its traceback goes to the log only."""
        if self._cancel.is_set():
            return self._stopped()
        self._log.exception("job crashed")
        return Failed(INTERNAL_FAILURE)

    def _stopped(self) -> Stopped:
        reason = self._cancel.reason
        if reason == CancelSignal.SHUTDOWN:
            self._log.warning("job interrupted by shutdown, handing it back")
        else:
            self._log.info("job dropped", extra={"reason": reason})
        return Stopped(reason)

    def _report(self, ending: Ending, started: float) -> Outcome:
        """The one place that tells the edge how the job ended."""
        match ending:
            case Completed(result):
                return self._report_complete(result, started)
            case Planned(segments):
                self._log.info(
                    "job split into segments",
                    extra={
                        "segments": segments,
                        "elapsed_seconds": round(self._clock() - started, 3),
                    },
                )
                return Outcome.PLANNED
            case Failed(failure):
                self._report_failure(failure)
                return Outcome.FAILED
            case Stopped(CancelSignal.SHUTDOWN):
                self._report_failure(SHUTDOWN_FAILURE)
                return Outcome.INTERRUPTED
            case _:
                return Outcome.CANCELLED

    def _report_complete(self, result: ResultMetadata, started: float) -> Outcome:
        body = CompleteRequest(claim_token=self._claim.claim_token, result=result)
        report = self._deliver(lambda: self._edge.complete(self._claim.job_id, body), "complete")
        if report is _Report.STALE:
            return Outcome.CANCELLED
        if report is _Report.UNDELIVERED:
            return Outcome.FAILED
        self._log.info(
            "job completed",
            extra={
                "duration_seconds": result.duration_seconds,
                "elapsed_seconds": round(self._clock() - started, 3),
            },
        )
        return Outcome.COMPLETED

    def _report_failure(self, failure: JobFailure) -> None:
        body = AgentFailRequest(
            claim_token=self._claim.claim_token,
            code=failure.code,
            message=failure.message[:MAX_FAIL_MESSAGE],
            retryable=failure.retryable,
        )
        self._deliver(lambda: self._edge.fail(self._claim.job_id, body), "fail")

    def _deliver(self, call: Callable[[], None], what: str) -> _Report:
        """Deliver a final report (the edge client retries transient errors).

        If it never gets through, the edge's heartbeat timeout re-enqueues the job.
        """
        try:
            call()
            return _Report.DELIVERED
        except (ClaimConflict, JobGone) as exc:
            self._log.warning(f"{what} refused: claim is stale", extra={"error": str(exc)})
            return _Report.STALE
        except EdgeError as exc:
            self._log.error(
                f"{what} could not be delivered; the edge will time the job out",
                extra={"error": str(exc)},
            )
            return _Report.UNDELIVERED

    def _send_progress(self, snapshot: Snapshot) -> ProgressReply:
        body = ProgressRequest(
            claim_token=self._claim.claim_token,
            progress=snapshot.progress,
            stage=snapshot.stage,
            eta_seconds=snapshot.eta_seconds,
            speakers=snapshot.speakers,
        )
        return self._edge.progress(self._claim.job_id, body)
