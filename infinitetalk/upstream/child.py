"""The model worker process: loads upstream once, then runs jobs sent over a pipe.

Started by `resident.ModelWorker` with the spawn method, in its own session (so a kill
takes every process it started and a terminal's Ctrl-C does not reach it). It answers
each `RunJob` with `Step`/`Encoding` events and one `Done`, `Failed` or `Cancelled`.

Cancelling (after cog's worker): the agent writes the job's number to a shared value and
sends SIGUSR1; while upstream code runs, the handler raises `JobCancelled` right there,
and while an event is being sent it waits until the send is complete. After a failure the
worker frees GPU memory and checks the CUDA context; if that is broken it says so
(`fatal`) and exits, and the agent starts a fresh worker.
"""

import io
import logging
import os
import signal
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from typing import Protocol

from contracts import FailureCode
from contracts.logs import configure_logging
from infinitetalk.upstream import failures
from infinitetalk.upstream.logtail import LogTail
from infinitetalk.upstream.protocol import (
    Cancelled,
    Done,
    Failed,
    JobEnd,
    JobEvent,
    LoadFailed,
    Ready,
    RunJob,
    Shutdown,
    WorkerConfig,
)

log = logging.getLogger(__name__)

CANCEL_SIGNAL = signal.SIGUSR1
TAIL_LINES = 40
TRACEBACK_LINES = 12
PARENT_CHECK_SECONDS = 1.0


class JobCancelled(BaseException):
    """Raised inside upstream code to stop a job; a BaseException so `except Exception`
    blocks in upstream cannot swallow it."""


class SharedNumber(Protocol):
    value: int


class Runtime(Protocol):
    def load(self) -> None: ...

    def generate(self, job: RunJob, emit: Callable[[JobEvent], None]) -> Done: ...

    def recover(self) -> None: ...

    def cuda_healthy(self) -> bool: ...


class Interrupts:
    """Turns the cancel signal for the current job into `JobCancelled` at a safe moment."""

    def __init__(self, cancel_target: SharedNumber) -> None:
        self._target = cancel_target
        self._job: int | None = None
        self._armed = False

    def handle(self, signum: int, frame: object) -> None:
        if self._armed and self._requested():
            self._armed = False
            raise JobCancelled()

    @contextmanager
    def job(self, number: int) -> Iterator[None]:
        """Upstream runs inside: a cancel of job `number` raises at once."""
        self._job = number
        self._armed = True
        try:
            self.check()
            yield
        finally:
            self._armed = False

    @contextmanager
    def paused(self) -> Iterator[None]:
        """A message is being written to the pipe: a cancel waits until it is complete."""
        armed, self._armed = self._armed, False
        try:
            yield
        finally:
            self._armed = armed
            if armed:
                self.check()

    def check(self) -> None:
        if self._requested():
            self._armed = False
            raise JobCancelled()

    def _requested(self) -> bool:
        return self._job is not None and self._target.value == self._job


class TailHandler(logging.Handler):
    """Keeps the last log lines of the worker (upstream's included) for failure reports."""

    def __init__(self, maxlen: int = TAIL_LINES) -> None:
        super().__init__(logging.INFO)
        self.lines: deque[str] = deque(maxlen=maxlen)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


class StdoutToLog(io.TextIOBase):
    """Upstream prints progress notes; they become log records instead of raw stdout."""

    def __init__(self, logger: logging.Logger) -> None:
        self._tail = LogTail(logger, logging.INFO)

    def write(self, text: str) -> int:
        self._tail.feed(text)
        return len(text)


def serve(conn: Connection, runtime: Runtime, interrupts: Interrupts, tail: TailHandler) -> int:
    """Load, report, then run jobs until Shutdown or the agent goes away; the exit status."""
    started = time.monotonic()
    try:
        runtime.load()
    except Exception as exc:
        log.exception("model load failed")
        conn.send(LoadFailed(f"{type(exc).__name__}: {exc}", _tail(tail, exc)))
        return 1
    load_seconds = time.monotonic() - started
    log.info("model loaded", extra={"load_seconds": round(load_seconds, 1)})
    conn.send(Ready(load_seconds=load_seconds))
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return 0
        if isinstance(message, Shutdown):
            return 0
        end = run_job(message, conn.send, runtime, interrupts, tail)
        conn.send(end)
        if isinstance(end, Failed) and end.fatal:
            return 1


def run_job(
    job: RunJob,
    send: Callable[[object], None],
    runtime: Runtime,
    interrupts: Interrupts,
    tail: TailHandler,
) -> JobEnd:
    def emit(event: JobEvent) -> None:
        with interrupts.paused():
            send(event)

    try:
        with interrupts.job(job.number):
            return runtime.generate(job, emit)
    except JobCancelled:
        runtime.recover()
        log.info("job cancelled")
        return Cancelled()
    except Exception as exc:
        lines = _tail(tail, exc)
        runtime.recover()
        broken = failures.mentions_broken_cuda([str(exc)]) or not runtime.cuda_healthy()
        if failures.mentions_oom([type(exc).__name__, str(exc)]):
            code, message = FailureCode.GPU_OUT_OF_MEMORY, failures.OOM_MESSAGE
        else:
            code, message = FailureCode.GENERATION_FAILED, "InfiniteTalk failed"
        log.warning("job failed", extra={"code": code.value, "fatal": broken})
        return Failed(code=code.value, message=message, log_tail=lines, fatal=broken)


def child_main(conn: Connection, config: WorkerConfig, cancel_target: SharedNumber) -> None:
    """The worker process's entry point (multiprocessing spawn target)."""
    from infinitetalk.upstream.runtime import UpstreamRuntime  # torch only in this process

    os.setsid()
    if config.child_env:
        os.environ.clear()
        os.environ.update(config.child_env)
    configure_logging(config.log_level)
    tail = TailHandler()
    logging.getLogger().addHandler(tail)
    sys.stdout = StdoutToLog(logging.getLogger("infinitetalk.upstream"))
    interrupts = Interrupts(cancel_target)
    signal.signal(CANCEL_SIGNAL, interrupts.handle)
    _exit_with_parent(os.getppid())
    sys.exit(serve(conn, UpstreamRuntime(config), interrupts, tail))


def _exit_with_parent(parent: int) -> None:
    """The agent may die without a word (SIGKILL); never leave a model holding the GPU."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _tail(tail: TailHandler, exc: BaseException) -> tuple[str, ...]:
    trace = "".join(traceback.format_exception(exc)).splitlines()[-TRACEBACK_LINES:]
    return (*tail.lines, *trace)
