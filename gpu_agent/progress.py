"""Job progress: phase mapping, throttled reporting and the heartbeat thread.

The engine's callback only records the latest state (it never waits on the network);
a single sender thread posts it to the edge. That keeps the GPU loop free of HTTP
latency, and because one thread sends snapshots of a monotonic state, the edge sees a
monotonic series. The same thread is the heartbeat: it re-sends the state whenever
`heartbeat_interval` passes without a report, so a silent engine never looks dead.
Failed reports are retried with backoff while the engine keeps running; only an edge
that stays unreachable past `lost_after` (by then it has given the job to another
agent) stops the job.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from contracts import ProgressReply, SpeakerAssignment, Stage
from gpu_agent.edge_client import ClaimConflict, EdgeError, JobGone
from gpu_agent.retry import HEARTBEAT_RETRY, RetryPolicy

log = logging.getLogger(__name__)

DOWNLOAD_SPAN = (0.0, 5.0)
ENGINE_SPAN = (5.0, 95.0)
UPLOAD_SPAN = (95.0, 100.0)
ENGINE_STAGES = (Stage.GENERATING, Stage.ENCODING)


@dataclass(frozen=True)
class Snapshot:
    """One progress report: overall percent, stage and estimated seconds left."""

    progress: float
    stage: Stage
    eta_seconds: float | None = None
    speakers: SpeakerAssignment | None = None
    """A two-speaker job's assignment, carried by every report once chosen."""


class CancelSignal:
    """Set once when the job must stop; remembers the first reason (for logs and outcome)."""

    CANCEL_REQUESTED = "cancel_requested"
    STALE_CLAIM = "stale_claim"
    JOB_GONE = "job_gone"
    EDGE_LOST = "edge_lost"
    SHUTDOWN = "shutdown"

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._reason: str | None = None

    def set(self, reason: str) -> None:
        with self._lock:
            if self._reason is None:
                self._reason = reason
            self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    @property
    def reason(self) -> str | None:
        return self._reason


class ProgressMapper:
    """Maps each phase's own progress into the job's overall 0-100 %, never going back.

    Downloading is 0-5 %, the engine's 0-100 % becomes 5-95 % (its stage and ETA are
    kept), uploading is 95-100 %.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0.0
        self._speakers: SpeakerAssignment | None = None

    def assigned(self, speakers: SpeakerAssignment) -> Snapshot:
        """The speakers' boxes are chosen: this and every later report carry them."""
        with self._lock:
            self._speakers = speakers
            progress = round(self._last, 2)
        return Snapshot(progress, Stage.DOWNLOADING, None, speakers)

    def downloading(self, fraction: float) -> Snapshot:
        return self._emit(DOWNLOAD_SPAN, fraction, Stage.DOWNLOADING, None)

    def engine(self, percent: float, stage: Stage | str, eta_seconds: float | None) -> Snapshot:
        try:
            mapped_stage = Stage(stage)
        except ValueError:
            mapped_stage = Stage.GENERATING
        if mapped_stage not in ENGINE_STAGES:
            mapped_stage = Stage.GENERATING
        return self._emit(ENGINE_SPAN, _ratio(percent / 100.0), mapped_stage, eta_seconds)

    def uploading(self, fraction: float) -> Snapshot:
        return self._emit(UPLOAD_SPAN, fraction, Stage.UPLOADING, None)

    def _emit(
        self, span: tuple[float, float], fraction: float, stage: Stage, eta: float | None
    ) -> Snapshot:
        low, high = span
        value = low + (high - low) * _ratio(fraction)
        with self._lock:
            self._last = max(self._last, value)
            progress = round(self._last, 2)
            speakers = self._speakers
        if eta is not None and not (math.isfinite(eta) and eta >= 0):
            eta = None
        return Snapshot(progress, stage, eta, speakers)


def _ratio(value: float) -> float:
    if not math.isfinite(value):
        return 0.0
    return min(max(value, 0.0), 1.0)


SendProgress = Callable[[Snapshot], ProgressReply]


class ProgressReporter:
    """Thread-safe latest state plus the rule for when it is due at the edge.

    Due: immediately for the first report and on a stage change; on a progress change
    once `min_interval` has passed since the last report; otherwise every
    `heartbeat_interval`. After failed sends it waits `retry.delay(failures)` (never
    longer than `heartbeat_interval`) before trying again, and gives up with
    `EDGE_LOST` once nothing has got through for `lost_after` seconds. A cancel request
    or a stale claim (409) or a vanished job (404) in the reply sets `cancel`, after
    which nothing more is sent.
    """

    def __init__(
        self,
        send: SendProgress,
        cancel: CancelSignal,
        *,
        heartbeat_interval: float,
        lost_after: float,
        min_interval: float = 1.0,
        retry: RetryPolicy = HEARTBEAT_RETRY,
        clock: Callable[[], float] = time.monotonic,
        initial: Snapshot | None = None,
    ) -> None:
        self._send = send
        self._cancel = cancel
        self._heartbeat_interval = max(heartbeat_interval, 0.01)
        self._min_interval = min(max(min_interval, 0.0), self._heartbeat_interval)
        self._lost_after = lost_after
        self._retry = retry
        self._clock = clock
        self._changed = threading.Condition()
        self._current = initial or Snapshot(0.0, Stage.DOWNLOADING, None)
        self._last_sent: Snapshot | None = None
        self._last_sent_at = clock()  # the claim that just succeeded counts as contact
        self._failures = 0
        self._retry_at: float | None = None

    @property
    def current(self) -> Snapshot:
        with self._changed:
            return self._current

    @property
    def last_sent(self) -> Snapshot | None:
        with self._changed:
            return self._last_sent

    def update(self, snapshot: Snapshot) -> None:
        """Record the latest state; never blocks on the network."""
        with self._changed:
            self._current = snapshot
            self._changed.notify_all()

    def wake(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def seconds_until_due(self) -> float:
        with self._changed:
            return self._due_in(self._clock())

    def wait_until_due(self, stop: threading.Event) -> None:
        """Block until a report is due, `stop` is set (then call `wake`), or cancel."""
        with self._changed:
            while not stop.is_set():
                delay = self._due_in(self._clock())
                if delay <= 0:
                    return
                self._changed.wait(None if math.isinf(delay) else delay)

    def send_if_due(self) -> bool:
        """Send the current state if it is due; returns whether a send was attempted."""
        with self._changed:
            now = self._clock()
            if self._due_in(now) > 0:
                return False
            snapshot = self._current
        self._deliver(snapshot, now)
        return True

    def _due_in(self, now: float) -> float:
        if self._cancel.is_set():
            return math.inf
        last = self._last_sent
        if last is None or (self._current.stage, self._current.speakers) != (
            last.stage,
            last.speakers,
        ):
            due = now
        elif self._current.progress != last.progress:
            due = self._last_sent_at + self._min_interval
        else:
            due = self._last_sent_at + self._heartbeat_interval
        if self._retry_at is not None:
            due = max(due, self._retry_at)
        return max(due - now, 0.0)

    def _deliver(self, snapshot: Snapshot, now: float) -> None:
        try:
            reply = self._send(snapshot)
        except ClaimConflict as exc:
            log.warning("claim is stale, stopping the job", extra={"error": str(exc)})
            self._cancel.set(CancelSignal.STALE_CLAIM)
            return
        except JobGone as exc:
            log.warning("job is gone, stopping it", extra={"error": str(exc)})
            self._cancel.set(CancelSignal.JOB_GONE)
            return
        except EdgeError as exc:
            self._failed(str(exc))
            return
        except Exception:
            log.exception("progress report failed unexpectedly")
            self._failed("unexpected error")
            return
        with self._changed:
            self._last_sent = snapshot
            self._last_sent_at = now
            self._failures = 0
            self._retry_at = None
        if reply.cancel_requested:
            log.info("edge requested cancellation")
            self._cancel.set(CancelSignal.CANCEL_REQUESTED)

    def _failed(self, error: str) -> None:
        """Schedule the next try, or give up once the edge has surely declared us lost."""
        now = self._clock()
        with self._changed:
            self._failures += 1
            silent_for = now - self._last_sent_at
            delay = min(self._retry.delay(self._failures), self._heartbeat_interval)
            self._retry_at = now + delay
        if silent_for >= self._lost_after:
            log.error(
                "edge unreachable for too long, stopping the job",
                extra={"error": error, "silent_seconds": round(silent_for, 1)},
            )
            self._cancel.set(CancelSignal.EDGE_LOST)
            return
        log.warning(
            "progress report failed, will retry",
            extra={
                "error": error,
                "retry_in_seconds": round(delay, 2),
                "silent_seconds": round(silent_for, 1),
            },
        )


class Heartbeat:
    """Runs the reporter's sender thread for the duration of a `with` block."""

    def __init__(self, reporter: ProgressReporter, *, name: str = "progress-heartbeat") -> None:
        self._reporter = reporter
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def __enter__(self) -> Heartbeat:
        # The first report goes out before any work: it confirms the claim is live and
        # picks up a cancel that arrived while the job sat in the queue.
        self._reporter.send_if_due()
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # An abort (a second Ctrl-C) must not wait for a report in flight; the thread
        # is a daemon and dies with the process.
        self.stop(wait=exc is None or isinstance(exc, Exception))

    def stop(self, *, wait: bool = True) -> None:
        """Stop sending; by default waits for an in-flight report (bounded by HTTP timeouts)."""
        self._stop.set()
        self._reporter.wake()
        if wait and self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while True:
            self._reporter.wait_until_due(self._stop)
            if self._stop.is_set():
                return
            self._reporter.send_if_due()
