"""The agent's handle on its model worker process (`child`): state, restarts, stops.

The model lives in a spawned child, not in the agent, after cog's worker: a CUDA crash, an
out-of-memory kill or a hung kernel takes down the child, never the agent. `ModelWorker`
keeps the child's state (STARTING -> READY -> BUSY -> READY ... or DEFUNCT), restarts a
dead or broken child and counts the reloads, and turns a cancel or a time limit into a
signal, then a kill if the child does not stop within the grace period.
"""

import contextlib
import dataclasses
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from multiprocessing.context import SpawnContext

from infinitetalk.engine import CancelCheck, CancelledError
from infinitetalk.upstream import protocol
from infinitetalk.upstream.child import CANCEL_SIGNAL, child_main
from infinitetalk.upstream.engine import Stop

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2
STOP_SECONDS = 10.0
"""How long a Shutdown may take before the worker is killed."""


class WorkerState(StrEnum):
    STOPPED = "stopped"
    STARTING = "starting"
    READY = "ready"
    BUSY = "busy"
    DEFUNCT = "defunct"


class WorkerLoadError(RuntimeError):
    def __init__(self, message: str, log_tail: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.log_tail = log_tail


class WorkerDied(RuntimeError):
    def __init__(self, exitcode: int | None) -> None:
        super().__init__(f"the model worker died (exit code {exitcode})")
        self.exitcode = exitcode


@dataclass(frozen=True)
class JobOutcome:
    end: protocol.JobEnd | None
    """None when the worker had to be killed."""
    stopped: Stop | None
    """Set when the agent stopped the job (cancel or time limit)."""


class ModelWorker:
    """The agent's handle on the model worker process."""

    def __init__(
        self,
        config: protocol.WorkerConfig,
        *,
        load_timeout: float,
        cancel_grace: float,
        target: Callable[..., None] = child_main,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._load_timeout = load_timeout
        self._cancel_grace = cancel_grace
        self._target = target
        self._clock = clock
        self._context: SpawnContext = multiprocessing.get_context("spawn")
        self._cancel_target = self._context.Value("q", 0, lock=False)
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: multiprocessing.connection.Connection | None = None
        self._started_at = 0.0
        self._jobs = 0
        self.starts = 0
        self.state = WorkerState.STOPPED

    @property
    def reloads(self) -> int:
        """Model loads after the first: each one is a worker that died or had to be killed."""
        return max(0, self.starts - 1)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Spawn a worker; it loads the model on its own (`wait_ready` waits for that)."""
        parent_end, child_end = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=self._target,
            args=(child_end, self._config, self._cancel_target),
            name="infinitetalk-model",
            daemon=True,
        )
        process.start()
        child_end.close()
        self._process, self._conn = process, parent_end
        self._started_at = self._clock()
        self.starts += 1
        self.state = WorkerState.STARTING
        log.info("model worker started", extra={"pid": process.pid, "reloads": self.reloads})

    def restart(self) -> None:
        self.kill()
        self.start()

    def wait_ready(self, cancelled: CancelCheck = lambda: False) -> float:
        """Block until the model is loaded; returns the load time in seconds."""
        while True:
            try:
                message = self._receive()
            except WorkerDied as died:
                self.state = WorkerState.DEFUNCT
                raise WorkerLoadError(f"{died} while loading the model") from died
            if isinstance(message, protocol.Ready):
                self.state = WorkerState.READY
                log.info("model ready", extra={"load_seconds": round(message.load_seconds, 1)})
                return message.load_seconds
            if isinstance(message, protocol.LoadFailed):
                self.kill()
                raise WorkerLoadError(message.message, message.log_tail)
            if cancelled():
                raise CancelledError()
            if self._clock() - self._started_at > self._load_timeout:
                self.kill()
                raise WorkerLoadError(f"the model did not load within {self._load_timeout:.0f} s")

    def run(
        self,
        job: protocol.RunJob,
        on_event: Callable[[protocol.JobEvent], None],
        cancelled: CancelCheck,
        deadline: float,
    ) -> JobOutcome:
        """Run one job to its end; cancel or time limit: signal, then kill after the grace.

        Raises WorkerDied when the worker exits mid-job.
        """
        assert self._conn is not None and self.state is WorkerState.READY
        self._jobs += 1
        job = dataclasses.replace(job, number=self._jobs)
        self.state = WorkerState.BUSY
        self._conn.send(job)
        stopped: Stop | None = None
        stop_sent_at = 0.0
        while True:
            try:
                message = self._receive()
            except WorkerDied:
                self.state = WorkerState.DEFUNCT
                raise
            if isinstance(message, protocol.Step | protocol.Encoding):
                on_event(message)
            elif isinstance(message, protocol.Done | protocol.Failed | protocol.Cancelled):
                fatal = isinstance(message, protocol.Failed) and message.fatal
                self.state = WorkerState.DEFUNCT if fatal else WorkerState.READY
                return JobOutcome(message, stopped)
            if stopped is None:
                if cancelled():
                    stopped = Stop.CANCELLED
                elif self._clock() > deadline:
                    stopped = Stop.TIMED_OUT
                if stopped is not None:
                    stop_sent_at = self._clock()
                    self._signal_cancel(job.number)
            elif self._clock() - stop_sent_at > self._cancel_grace:
                log.warning("model worker did not stop in time, killing it")
                self.kill()
                return JobOutcome(None, stopped)

    def kill(self) -> None:
        """SIGKILL the worker's process group (it leads its own session) and reap it."""
        process = self._process
        if process is not None and process.pid is not None and process.is_alive():
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:  # not yet in its own session
                process.kill()
            process.join()
        self._close_pipe()
        self.state = WorkerState.DEFUNCT

    def stop(self) -> None:
        """Ask an idle worker to exit, kill a busy or stubborn one; the GPU memory is freed."""
        process = self._process
        if self.state is WorkerState.READY and process is not None and self._conn is not None:
            with contextlib.suppress(OSError, ValueError):
                self._conn.send(protocol.Shutdown())
            process.join(STOP_SECONDS)
        self.kill()
        self.state = WorkerState.STOPPED

    def _signal_cancel(self, number: int) -> None:
        self._cancel_target.value = number
        if self._process is not None and self._process.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._process.pid, CANCEL_SIGNAL)

    def _receive(self) -> object | None:
        """The worker's next message, None if none came within POLL_SECONDS."""
        assert self._conn is not None and self._process is not None
        try:
            if self._conn.poll(POLL_SECONDS):
                return self._conn.recv()
            if self._process.is_alive():
                return None
        except (EOFError, OSError):
            pass
        self._process.join(5)
        raise WorkerDied(self._process.exitcode)

    def _close_pipe(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
