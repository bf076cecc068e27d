"""The `avatar` CLI's progress display for a job, drawn from each status poll.

The client's base install has no progress-bar library, and one would describe polls rather
than the job anyway: this shows what the server says (stage, percent, queue position, ETA).
"""

import io
import math
import os
from typing import Protocol, TextIO

DEFAULT_COLUMNS = 80
"""Used when the terminal reports no width (0 columns: some CI terminals, a resized pty)."""
MIN_BAR = 10
LABEL_WIDTH = 11
_FINISHED_UNSUCCESSFULLY = ("failed", "cancelled", "expired")


class JobProgress(Protocol):
    """The parts of a job's status view the display reads."""

    @property
    def status(self) -> str: ...

    @property
    def stage(self) -> str: ...

    @property
    def progress(self) -> float: ...

    @property
    def queue_position(self) -> int | None: ...

    @property
    def eta_seconds(self) -> float | None: ...


def label(job: JobProgress) -> str:
    """The stage, except for a job that ended badly: its status says more than its stage."""
    status = str(job.status)
    return status if status in _FINISHED_UNSUCCESSFULLY else str(job.stage)


def describe_wait(job: JobProgress) -> str:
    """Jobs ahead while pending, the server's ETA while processing; else empty."""
    status = str(job.status)
    if status == "pending" and job.queue_position is not None:
        return f"{job.queue_position} ahead in queue"
    if status == "processing" and job.eta_seconds is not None:
        return f"eta {duration(job.eta_seconds)}"
    return ""


def duration(seconds: float) -> str:
    minutes, secs = divmod(math.ceil(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def plain_line(job: JobProgress) -> str:
    """One log line, for a stream that is not a terminal."""
    wait = describe_wait(job)
    return f"{label(job)} {math.floor(job.progress)}%" + (f", {wait}" if wait else "")


def bar_line(job: JobProgress, columns: int) -> str:
    """The terminal line: label, percent, a bar filling the width, then the wait.

    One column is left free: writing the last one makes some terminals wrap.
    """
    columns = columns if columns > 0 else DEFAULT_COLUMNS
    head = f"{label(job):<{LABEL_WIDTH}} {math.floor(job.progress):3d}% "
    wait = describe_wait(job)
    tail = f" {wait}" if wait else ""
    width = max(MIN_BAR, columns - 1 - len(head) - len(tail) - 2)
    filled = min(width, math.floor(width * job.progress / 100))
    return f"{head}[{'#' * filled}{'-' * (width - filled)}]{tail}"


def terminal_columns(stream: TextIO) -> int:
    """The stream's terminal width; 0 when it has none or will not say."""
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError, io.UnsupportedOperation):
        return 0


class ProgressDisplay:
    """Call it with each job view; `close()` when done.

    On a terminal (`live`) one line is redrawn in place with `\\r`; elsewhere a plain line
    is written whenever the label, percent or queue position changes (not on every ETA tick).
    """

    def __init__(self, stream: TextIO, *, live: bool, columns: int | None = None) -> None:
        self._stream = stream
        self._live = live
        self._columns = columns
        self._drawn = 0
        self._last_plain: tuple[str, int, int | None] | None = None

    def __call__(self, job: JobProgress) -> None:
        if self._live:
            columns = terminal_columns(self._stream) if self._columns is None else self._columns
            line = bar_line(job, columns)
            self._stream.write("\r" + line.ljust(self._drawn))
            self._drawn = len(line)
        else:
            key = (label(job), math.floor(job.progress), job.queue_position)
            if key == self._last_plain:
                return
            self._last_plain = key
            self._stream.write(plain_line(job) + "\n")
        self._stream.flush()

    def close(self) -> None:
        """End the live line so what follows starts on a line of its own."""
        if self._drawn:
            self._stream.write("\n")
            self._stream.flush()
            self._drawn = 0
