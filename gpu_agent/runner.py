"""One queue message end to end: decode, claim, ack, download, generate, upload, report.

`JobRunner.run` never raises for a job-level problem: every path ends in an `Outcome`
and, after a successful claim, in exactly one of complete, fail, or silence (the job
was cancelled or taken over by a newer attempt, which the edge already knows).
Edge and queue calls retry inside their clients; downloads and uploads retry here, each
try starting over. `interrupt` (the agent's shutdown grace ran out) stops the job in
progress and hands it back to the edge with a retryable `/fail`.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import httpx

from contracts import (
    AgentFailRequest,
    ClaimResponse,
    CompleteRequest,
    FailureCode,
    ProgressReply,
    ProgressRequest,
    PulledMessage,
    QueueMessage,
    ResultMetadata,
)
from gpu_agent.edge_client import ClaimConflict, EdgeClient, EdgeError, JobGone
from gpu_agent.probes import MediaProbes, sniff_suffix
from gpu_agent.progress import CancelSignal, Heartbeat, ProgressMapper, ProgressReporter, Snapshot
from gpu_agent.queue_client import CloudflareQueueClient, QueueError
from gpu_agent.retry import HEARTBEAT_RETRY, TRANSFER_RETRY, RetryPolicy
from gpu_agent.transfers import (
    PayloadTooLarge,
    TransferCancelled,
    TransferError,
    download,
    upload,
)
from infinitetalk.engine import (
    CancelledError,
    Engine,
    EngineError,
    InvalidInputError,
    VideoRequest,
    require_quality,
)

log = logging.getLogger(__name__)

INTERNAL_ERROR_MESSAGE = "internal error in the GPU agent"
SHUTDOWN_MESSAGE = "agent shutting down"
MAX_FAIL_MESSAGE = 2000
IMAGE_SHARE = 0.2  # of the download phase; the audio is usually the bigger file


class Outcome(StrEnum):
    """How one message ended, for logs and tests."""

    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"  # acked without work: poison, not claimable, unknown job
    CANCELLED = "cancelled"  # cancel requested, stale claim or job gone: no upload/complete
    REQUEUED = "requeued"  # not claimed (claim failed, or shutting down): handed back to the queue
    INTERRUPTED = "interrupted"  # shutdown grace ran out: handed back to the edge with /fail


@dataclass(frozen=True)
class RunnerLimits:
    """Caps and pacing; defaults follow DESIGN.md sections 3, 4 and 7.

    `edge_lost_after_seconds` is the edge's HEARTBEAT_TIMEOUT_SECONDS (120) plus one
    maintenance interval (60): by then the edge has re-enqueued the job, so running on
    would only duplicate the work of the agent that now owns it.
    """

    max_image_bytes: int = 10 * 1024 * 1024
    max_audio_bytes: int = 50 * 1024 * 1024
    claim_retry_delay_seconds: int = 10
    progress_min_interval: float = 1.0
    edge_lost_after_seconds: float = 180.0
    transfer_retry: RetryPolicy = TRANSFER_RETRY
    heartbeat_retry: RetryPolicy = HEARTBEAT_RETRY


class _Delivery(StrEnum):
    DELIVERED = "delivered"
    STALE = "stale"
    UNDELIVERED = "undelivered"


class _JobFailed(Exception):
    """A job-level failure to report with `/fail`."""

    def __init__(self, code: FailureCode, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable


class _JobLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Adds job fields to every record, merged with the call's own `extra`."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs


class JobRunner:
    """Runs one pulled message at a time; owns nothing that outlives the message."""

    def __init__(
        self,
        *,
        queue: CloudflareQueueClient,
        edge: EdgeClient,
        transfers: httpx.Client,
        engine: Engine,
        agent_id: str,
        work_dir: Path,
        probes: MediaProbes | None = None,
        limits: RunnerLimits | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._queue = queue
        self._edge = edge
        self._transfers = transfers
        self._engine = engine
        self._agent_id = agent_id
        self._work_dir = work_dir
        self._probes = probes
        self._limits = limits or RunnerLimits()
        self._clock = clock
        self._lock = threading.Lock()
        self._interrupted = False
        self._current: CancelSignal | None = None

    def interrupt(self) -> None:
        """Stop the job in progress, and any later one, for a shutdown (any thread may call).

        The job is handed back to the edge with a retryable `/fail`, so it is requeued
        at once instead of after the heartbeat timeout; a finished upload still completes.
        """
        with self._lock:
            self._interrupted = True
            current = self._current
        if current is not None:
            current.set(CancelSignal.SHUTDOWN)

    def run(self, message: PulledMessage) -> Outcome:
        """Handle one message; returns how it ended and never raises for job problems."""
        mlog = _JobLog(log, {"message_id": message.id, "delivery_attempts": message.attempts})
        try:
            queued = QueueMessage.decode_pulled(message)
            if queued.v != 1:
                raise ValueError(f"unsupported message version {queued.v}")
        except ValueError as exc:
            mlog.error("poison message acked", extra={"error": f"{type(exc).__name__}: {exc}"})
            self._ack(message, mlog)
            return Outcome.SKIPPED

        jlog = _JobLog(log, {**(mlog.extra or {}), "job_id": queued.job_id})
        with self._lock:
            interrupted = self._interrupted
        if interrupted:
            jlog.info("shutting down, message handed back unclaimed")
            self._requeue(message, jlog, delay_seconds=0)
            return Outcome.REQUEUED
        try:
            claim = self._edge.claim(
                queued.job_id, agent_id=self._agent_id, lease_id=message.lease_id
            )
        except (ClaimConflict, JobGone) as exc:
            jlog.info("job not claimable, message acked", extra={"reason": str(exc)})
            self._ack(message, jlog)
            return Outcome.SKIPPED
        except EdgeError as exc:
            jlog.warning("claim failed, message handed back", extra={"error": str(exc)})
            self._requeue(message, jlog)
            return Outcome.REQUEUED

        jlog = _JobLog(log, {**(jlog.extra or {}), "attempt": claim.attempt})
        jlog.info("job claimed")
        self._ack(message, jlog)  # from here the claim is the lease (DESIGN.md section 4)
        return self._run_claimed(claim, jlog)

    def _run_claimed(self, claim: ClaimResponse, jlog: _JobLog) -> Outcome:
        started = self._clock()
        cancel = CancelSignal()
        with self._lock:
            self._current = cancel
            if self._interrupted:
                cancel.set(CancelSignal.SHUTDOWN)
        mapper = ProgressMapper()
        reporter = ProgressReporter(
            lambda snapshot: self._send_progress(claim, snapshot),
            cancel,
            heartbeat_interval=min(claim.settings.heartbeat_interval_seconds, 30.0),
            lost_after=self._limits.edge_lost_after_seconds,
            min_interval=self._limits.progress_min_interval,
            retry=self._limits.heartbeat_retry,
            clock=self._clock,
            initial=mapper.downloading(0.0),
        )
        workdir: Path | None = None
        try:
            try:
                self._work_dir.mkdir(parents=True, exist_ok=True)
                workdir = Path(tempfile.mkdtemp(prefix="job-", dir=self._work_dir))
                with Heartbeat(reporter):
                    result = self._produce(claim, workdir, cancel, mapper, reporter, jlog)
            except _JobFailed as failure:
                if cancel.is_set():
                    return self._stopped(claim, cancel, jlog)
                if workdir is not None:  # the client sees this message: no agent paths
                    failure.message = failure.message.replace(f"{workdir}{os.sep}", "")
                jlog.warning(
                    "job failed",
                    extra={
                        "code": failure.code.value,
                        "retryable": failure.retryable,
                        "error": failure.message,
                    },
                )
                self._report_failure(claim, failure, jlog)
                return Outcome.FAILED
            except Exception:
                if cancel.is_set():
                    return self._stopped(claim, cancel, jlog)
                jlog.exception("job crashed")
                failure = _JobFailed(
                    FailureCode.INTERNAL_ERROR, INTERNAL_ERROR_MESSAGE, retryable=True
                )
                self._report_failure(claim, failure, jlog)
                return Outcome.FAILED
            # A shutdown that lands after the upload still completes: the work is done.
            if result is None or cancel.reason not in (None, CancelSignal.SHUTDOWN):
                return self._stopped(claim, cancel, jlog)
            return self._report_complete(claim, result, started, jlog)
        finally:
            with self._lock:
                self._current = None
            if workdir is not None:
                shutil.rmtree(workdir, ignore_errors=True)

    def _produce(
        self,
        claim: ClaimResponse,
        workdir: Path,
        cancel: CancelSignal,
        mapper: ProgressMapper,
        reporter: ProgressReporter,
        jlog: _JobLog,
    ) -> ResultMetadata | None:
        """Check the engine serves the job's quality, then download, validate, generate,
        verify and upload; None when cancelled."""
        try:
            require_quality(self._engine, claim.settings.quality)
        except EngineError as exc:  # fails before any download, never falls back
            raise _engine_failure(exc) from exc
        if self._probes is None:
            self._probes = MediaProbes.default()
        probes = self._probes
        try:
            image = self._fetch(
                claim.inputs.image_url,
                workdir / "image",
                self._limits.max_image_bytes,
                lambda f: reporter.update(mapper.downloading(f * IMAGE_SHARE)),
                cancel,
                "image",
            )
            audio = self._fetch(
                claim.inputs.audio_url,
                workdir / "audio",
                self._limits.max_audio_bytes,
                lambda f: reporter.update(mapper.downloading(IMAGE_SHARE + f * (1 - IMAGE_SHARE))),
                cancel,
                "audio",
            )
        except TransferCancelled:
            return None
        try:
            probes.probe_image(image)
            probes.probe_audio(audio)
        except InvalidInputError as exc:
            raise _JobFailed(FailureCode.INVALID_INPUT, exc.message, retryable=False) from exc
        if cancel.is_set():
            return None

        engine_dir = workdir / "engine"
        engine_dir.mkdir()
        request = VideoRequest(
            image_path=image,
            audio_path=audio,
            prompt=claim.prompt,
            resolution=claim.settings.resolution,
            seed=claim.settings.seed,
            quality=claim.settings.quality,
        )
        jlog.info(
            "engine started",
            extra={"engine": self._engine.name, "quality": request.quality.value},
        )
        try:
            video = self._engine.generate(
                request,
                engine_dir,
                lambda percent, stage, eta: reporter.update(mapper.engine(percent, stage, eta)),
                cancel.is_set,
            )
        except CancelledError:
            return None
        except EngineError as exc:
            raise _engine_failure(exc) from exc
        if cancel.is_set():
            return None

        metadata = self._verify(video.path, video.engine, probes)
        reporter.update(mapper.uploading(0.0))
        url = self._edge.resolve(claim.output.upload_url)
        try:
            self._transfer(
                lambda: upload(
                    self._transfers,
                    url,
                    video.path,
                    "video/mp4",
                    on_progress=lambda sent, total: reporter.update(
                        mapper.uploading(sent / total if total else 1.0)
                    ),
                    cancelled=cancel.is_set,
                ),
                cancel,
                "upload video",
            )
        except TransferCancelled:
            return None
        except TransferError as exc:
            raise _JobFailed(
                FailureCode.STORAGE_ERROR, "could not upload the video", retryable=True
            ) from exc
        jlog.info("video uploaded", extra={"size_bytes": metadata.size_bytes})
        return metadata

    def _fetch(
        self,
        url: str,
        dest: Path,
        max_bytes: int,
        on_fraction: Callable[[float], None],
        cancel: CancelSignal,
        what: str,
    ) -> Path:
        """Download one input and give it a suffix that matches its bytes."""
        resolved = self._edge.resolve(url)
        try:
            self._transfer(
                lambda: download(
                    self._transfers,
                    resolved,
                    dest,
                    max_bytes,
                    on_progress=lambda done, total: on_fraction(done / total if total else 0.0),
                    cancelled=cancel.is_set,
                ),
                cancel,
                f"download {what}",
            )
        except PayloadTooLarge as exc:
            raise _JobFailed(
                FailureCode.INVALID_INPUT,
                f"the {what} is larger than {max_bytes} bytes",
                retryable=False,
            ) from exc
        except TransferError as exc:
            detail = f" (HTTP {exc.status_code})" if exc.status_code else ""
            raise _JobFailed(
                FailureCode.STORAGE_ERROR, f"could not download the {what}{detail}", retryable=True
            ) from exc
        on_fraction(1.0)
        suffix = sniff_suffix(dest)
        if not suffix:
            return dest
        return dest.rename(dest.with_suffix(suffix))

    def _transfer(self, once: Callable[[], int], cancel: CancelSignal, what: str) -> int:
        """Retry a transfer from its start; a cancel between tries ends it at the next try."""

        def attempt() -> int:
            if cancel.is_set():
                raise TransferCancelled(f"{what} cancelled")
            return once()

        return self._limits.transfer_retry.call(attempt, what=what)

    def _verify(self, path: Path, engine_name: str, probes: MediaProbes) -> ResultMetadata:
        """The engine checks its output too; this guards against uploading a broken file."""
        try:
            size = path.stat().st_size
            facts = probes.probe_video(path)
            if size <= 0 or not facts.duration_seconds > 0:
                raise ValueError("empty video")
            return ResultMetadata(
                size_bytes=size,
                duration_seconds=facts.duration_seconds,
                width=facts.width,
                height=facts.height,
                engine=engine_name,
            )
        except (OSError, ValueError, EngineError) as exc:
            raise _JobFailed(
                FailureCode.GENERATION_FAILED,
                "the engine produced an unreadable video",
                retryable=True,
            ) from exc

    def _send_progress(self, claim: ClaimResponse, snapshot: Snapshot) -> ProgressReply:
        body = ProgressRequest(
            claim_token=claim.claim_token,
            progress=snapshot.progress,
            stage=snapshot.stage,
            eta_seconds=snapshot.eta_seconds,
        )
        return self._edge.progress(claim.job_id, body)

    def _report_complete(
        self, claim: ClaimResponse, result: ResultMetadata, started: float, jlog: _JobLog
    ) -> Outcome:
        body = CompleteRequest(claim_token=claim.claim_token, result=result)
        delivery = self._report(lambda: self._edge.complete(claim.job_id, body), "complete", jlog)
        if delivery is _Delivery.STALE:
            return Outcome.CANCELLED
        if delivery is _Delivery.UNDELIVERED:
            return Outcome.FAILED
        jlog.info(
            "job completed",
            extra={
                "duration_seconds": result.duration_seconds,
                "elapsed_seconds": round(self._clock() - started, 3),
            },
        )
        return Outcome.COMPLETED

    def _report_failure(self, claim: ClaimResponse, failure: _JobFailed, jlog: _JobLog) -> None:
        body = AgentFailRequest(
            claim_token=claim.claim_token,
            code=failure.code,
            message=failure.message[:MAX_FAIL_MESSAGE],
            retryable=failure.retryable,
        )
        self._report(lambda: self._edge.fail(claim.job_id, body), "fail", jlog)

    def _report(self, call: Callable[[], None], what: str, jlog: _JobLog) -> _Delivery:
        """Deliver a final report (the edge client retries transient errors).

        If it never gets through, the edge's heartbeat timeout re-enqueues the job.
        """
        try:
            call()
            return _Delivery.DELIVERED
        except (ClaimConflict, JobGone) as exc:
            jlog.warning(f"{what} refused: claim is stale", extra={"error": str(exc)})
            return _Delivery.STALE
        except EdgeError as exc:
            jlog.error(
                f"{what} could not be delivered; the edge will time the job out",
                extra={"error": str(exc)},
            )
            return _Delivery.UNDELIVERED

    def _stopped(self, claim: ClaimResponse, cancel: CancelSignal, jlog: _JobLog) -> Outcome:
        """The job was stopped before its end: hand it back on shutdown, else stay silent.

        Silent because the edge already knows (cancel requested, stale claim, job gone)
        or is unreachable and requeues the job itself once the heartbeat times out.
        """
        if cancel.reason == CancelSignal.SHUTDOWN:
            jlog.warning("job interrupted by shutdown, handing it back")
            failure = _JobFailed(FailureCode.AGENT_SHUTDOWN, SHUTDOWN_MESSAGE, retryable=True)
            self._report_failure(claim, failure, jlog)
            return Outcome.INTERRUPTED
        jlog.info("job dropped", extra={"reason": cancel.reason})
        return Outcome.CANCELLED

    def _ack(self, message: PulledMessage, mlog: _JobLog) -> None:
        try:
            self._queue.ack([message.lease_id])
        except QueueError as exc:
            # Redelivery after the visibility timeout is harmless: the claim is the lease.
            mlog.warning("ack failed", extra={"error": str(exc)})

    def _requeue(
        self, message: PulledMessage, mlog: _JobLog, *, delay_seconds: int | None = None
    ) -> None:
        delay = self._limits.claim_retry_delay_seconds if delay_seconds is None else delay_seconds
        try:
            self._queue.retry(message.lease_id, delay)
        except QueueError as exc:
            mlog.warning(
                "retry failed; the visibility timeout will redeliver", extra={"error": str(exc)}
            )


def _engine_failure(exc: EngineError) -> _JobFailed:
    return _JobFailed(_failure_code(exc.code), exc.message or str(exc), retryable=exc.retryable)


def _failure_code(code: str) -> FailureCode:
    """Engine codes outside the contract's list become GENERATION_FAILED."""
    try:
        return FailureCode(code)
    except ValueError:
        return FailureCode.GENERATION_FAILED
