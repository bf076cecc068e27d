"""`wait()` over the job's event stream (`GET /jobs/{id}/events`), shared by both clients:
the Server-Sent Events line parser, and when to resume, give up or fall back to polling.

A server without the stream (404 or 405 for it, or an answer that is not an event stream)
is polled instead; a stream that breaks is resumed with `Last-Event-ID` a few times, then
polled too. A stream the server closes by its lifetime, having delivered events, is simply
resumed."""

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from avatar_client.calls import invalid_response

EVENT_STREAM = "text/event-stream"
NO_STREAM_STATUSES = frozenset({404, 405})
MAX_BROKEN_STREAMS = 3
_STREAM_READ_SECONDS = 45.0  # the server sends a keepalive comment every 15 s
JOB_EVENTS = frozenset({"status", "progress"})
_M = TypeVar("_M", bound=BaseModel)


class Answer(StrEnum):
    """What the answer to a stream request means for `wait()`."""

    STREAM = "stream"  # read its events
    POLL = "poll"  # the server has no stream: poll from now on
    BROKEN = "broken"  # a failure worth another try
    ERROR = "error"  # an error to raise, as polling would meet it too


@dataclass(frozen=True)
class ServerEvent:
    event: str
    data: str
    id: str | None


@dataclass
class EventParser:
    """Lines in (without their line break), events out, as the SSE specification reads
    them: `field: value` lines up to a blank line; comments and unknown fields ignored."""

    _event: str = ""
    _data: list[str] = field(default_factory=list)
    _id: str | None = None

    def feed(self, line: str) -> ServerEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self._id = value
        return None

    def _dispatch(self) -> ServerEvent | None:
        data, event = self._data, self._event or "message"
        self._data, self._event = [], ""
        if not data:
            return None
        return ServerEvent(event, "\n".join(data), self._id)


class StreamWatch:
    """One `wait()`'s use of the stream: the last event id, and the breaks in a row."""

    def __init__(self) -> None:
        self.last_event_id: str | None = None
        self.broken = 0
        self._heard = False

    def headers(self) -> dict[str, str]:
        """For the next connection, which resumes after the last event."""
        self._heard = False
        headers = {"Accept": EVENT_STREAM}
        if self.last_event_id is not None:
            headers["Last-Event-ID"] = self.last_event_id
        return headers

    def heard(
        self, event: ServerEvent | None, model: type[_M], response: httpx.Response
    ) -> _M | None:
        """A line arrived, completing `event` or not: the job view it carries, if any."""
        self._heard = True
        if event is None or event.event not in JOB_EVENTS:
            return None
        try:
            job = model.model_validate_json(event.data)
        except ValidationError as exc:
            raise invalid_response(response, str(exc)) from exc
        if event.id is not None:
            self.last_event_id = event.id
        self.broken = 0
        return job

    def should_resume(self, failed: bool) -> bool:
        """After a connection ended without the final event: connect again, or poll.

        A clean end after anything was heard is the server's lifetime for a stream; a
        failure, an error answer or a silent end is a break, and after a few in a row the
        stream is given up."""
        if self._heard and not failed:
            return True
        self.broken += 1
        return self.broken < MAX_BROKEN_STREAMS


def judge(response: httpx.Response, retry_statuses: frozenset[int]) -> Answer:
    media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if response.is_success:
        return Answer.STREAM if media_type == EVENT_STREAM else Answer.POLL
    if response.status_code in NO_STREAM_STATUSES:
        return Answer.POLL
    return Answer.BROKEN if response.status_code in retry_statuses else Answer.ERROR


def read_timeout(remaining: float | None) -> httpx.Timeout:
    """Reads wait past the server's keepalives, but not past the wait's own deadline."""
    seconds = _STREAM_READ_SECONDS if remaining is None else min(_STREAM_READ_SECONDS, remaining)
    return httpx.Timeout(seconds, connect=10.0)
