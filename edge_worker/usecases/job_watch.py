"""Watching a job: the event stream of `GET /jobs/{id}/events` and `GET /status/{id}` with
`Prefer: wait=N`, both by re-reading the job from the store every
`JOB_WATCH_POLL_SECONDS` and sleeping in between (`anyio.sleep`: on the Worker a sleeping
request spends wall time, not CPU time)."""

from collections.abc import AsyncIterator
from dataclasses import dataclass

import anyio

from contracts import JobView
from edge_worker.domain.job_events import EventCursor, JobEvent, Watched, worth_waiting
from edge_worker.usecases.context import EdgeContext
from edge_worker.usecases.views import JobViews


@dataclass(frozen=True)
class Keepalive:
    """Nothing changed for a while: a comment keeps proxies from closing the stream."""


class JobStream:
    """One open stream: the job was found, so the reply can start."""

    def __init__(self, watch: "JobWatch", owner: str, first: JobView, cursor: EventCursor) -> None:
        self._watch = watch
        self._owner = owner
        self._first = first
        self._cursor = cursor

    async def items(self) -> AsyncIterator[JobEvent | Keepalive]:
        """Events until the terminal one (or until the stream's lifetime ends, when the
        client resumes with the last id it got), keepalives when nothing changed."""
        settings = self._watch.context.settings
        started = last_sent = anyio.current_time()
        view = self._first
        while True:
            event = self._cursor.next(view)
            if event is not None:
                yield event
                last_sent = anyio.current_time()
            if self._cursor.finished:
                return
            now = anyio.current_time()
            ends = started + settings.event_stream_max_seconds
            keepalive_due = last_sent + settings.event_keepalive_seconds
            if now >= ends:
                return
            await anyio.sleep(min(settings.job_watch_poll_seconds, ends - now, keepalive_due - now))
            if anyio.current_time() >= keepalive_due:
                yield Keepalive()
                last_sent = anyio.current_time()
            view = await self._watch.views.status(self._owner, view.job_id)


class JobWatch:
    def __init__(self, context: EdgeContext, views: JobViews) -> None:
        self.context = context
        self.views = views

    async def open_stream(self, owner: str, job_id: str, last_event_id: str | None) -> JobStream:
        """`JOB_NOT_FOUND` here, before any byte of the stream is sent."""
        first = await self.views.status(owner, job_id)
        return JobStream(self, owner, first, EventCursor(last_event_id))

    async def status_after_change(self, owner: str, job_id: str, seconds: float) -> JobView:
        """The job's view as soon as what a watcher sees of it differs from now, or after
        `seconds`; at once for a job in a final state."""
        view = await self.views.status(owner, job_id)
        if not worth_waiting(view):
            return view
        arrived = Watched.of(view)
        ends = anyio.current_time() + seconds
        while (remaining := ends - anyio.current_time()) > 0:
            await anyio.sleep(min(self.context.settings.job_watch_poll_seconds, remaining))
            view = await self.views.status(owner, job_id)
            if Watched.of(view) != arrived:
                break
        return view
