"""What a watcher of a job is told, and when: which change is an event and of which kind,
the ids that let a stream resume, and the `Prefer: wait` preference (RFC 7240).

Plain rules; the waiting itself is `usecases/job_watch.py`. An event id carries the
state its event showed, so a stream resumed with `Last-Event-ID` needs no server memory
to know what its client already has."""

import zlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Self

from contracts import JobStatus, JobView, Stage

MAX_PREFER_WAIT_SECONDS = 60
_FINGERPRINT_BITS = 32
_FINGERPRINT_MASK = (1 << _FINGERPRINT_BITS) - 1
_MAX_EVENT_ID_DIGITS = 30


class EventKind(StrEnum):
    STATUS = "status"  # status or stage changed, and every stream's first event
    PROGRESS = "progress"  # only progress, queue position or ETA changed


@dataclass(frozen=True)
class Watched:
    """The parts of a job's view whose change is news to a watcher."""

    status: JobStatus
    stage: Stage
    progress: float
    queue_position: int | None
    eta_seconds: int | None

    @classmethod
    def of(cls, view: JobView) -> Self:
        return cls(view.status, view.stage, view.progress, view.queue_position, view.eta_seconds)

    def fingerprint(self) -> int:
        text = "|".join(
            str(part)
            for part in (
                self.status.value,
                self.stage.value,
                repr(self.progress),
                self.queue_position,
                self.eta_seconds,
            )
        )
        return zlib.crc32(text.encode())

    def kind_after(self, previous: "Watched") -> EventKind:
        """The kind of the event that this state, differing from `previous`, makes."""
        if (self.status, self.stage) != (previous.status, previous.stage):
            return EventKind.STATUS
        return EventKind.PROGRESS


@dataclass(frozen=True)
class JobEvent:
    kind: EventKind
    event_id: int
    view: JobView


def event_id(sequence: int, state: Watched) -> int:
    """Increasing within a stream and across its resumptions (the high bits count events);
    the low 32 bits fingerprint the state the event carried."""
    return (sequence << _FINGERPRINT_BITS) | state.fingerprint()


def parse_event_id(text: str | None) -> tuple[int, int] | None:
    """(sequence, fingerprint) of a `Last-Event-ID`; None when absent or not one of ours,
    and then the stream starts afresh."""
    if text is None:
        return None
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > _MAX_EVENT_ID_DIGITS:
        return None
    value = int(text)
    return value >> _FINGERPRINT_BITS, value & _FINGERPRINT_MASK


class EventCursor:
    """Where one stream stands: what its client was last shown and the last id sent.

    Resumed from a `Last-Event-ID`, the state that id fingerprints is taken as the client's:
    it is not sent again, and the stream waits for the next change."""

    def __init__(self, last_event_id: str | None = None) -> None:
        resumed = parse_event_id(last_event_id)
        self.sequence = resumed[0] if resumed else 0
        self._resumed_fingerprint: int | None = resumed[1] if resumed else None
        self._shown: Watched | None = None
        self._sent_any = False

    def next(self, view: JobView) -> JobEvent | None:
        """The event `view` makes, or None when the client already has its state."""
        state = Watched.of(view)
        if self._shown is None and self._resumed_fingerprint == state.fingerprint():
            self._shown = state
            return None
        if state == self._shown:
            return None
        if self._sent_any and self._shown is not None:
            kind = state.kind_after(self._shown)
        else:
            kind = EventKind.STATUS
        self._shown = state
        self._sent_any = True
        self.sequence += 1
        return JobEvent(kind, event_id(self.sequence, state), view)

    @property
    def finished(self) -> bool:
        """The client has a terminal state: nothing will follow."""
        return self._shown is not None and self._shown.status.is_terminal


def prefer_wait(preferences: list[str]) -> int | None:
    """Seconds of `Prefer: wait=N` among the `Prefer` header values, clamped to
    `MAX_PREFER_WAIT_SECONDS`; None without one or for a malformed one (RFC 7240 says to
    ignore what cannot be understood). Only the first `wait` counts, as the RFC says."""
    for header in preferences:
        for preference in header.split(","):
            name, _, value = preference.split(";", 1)[0].partition("=")
            if name.strip().lower() != "wait":
                continue
            seconds = value.strip().strip('"')
            if not (seconds.isascii() and seconds.isdigit()) or int(seconds) < 1:
                return None
            return min(int(seconds), MAX_PREFER_WAIT_SECONDS)
    return None


def worth_waiting(view: JobView) -> bool:
    """A job in a final state will not change: a `Prefer: wait` is answered at once."""
    return not view.status.is_terminal
