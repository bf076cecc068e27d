"""`GET /jobs/{id}/events`: a job's status and progress as Server-Sent Events."""

from typing import Any

from litestar import Request, Router, get
from litestar.openapi import ResponseSpec
from litestar.params import FromPath
from litestar.response import Stream

from contracts import ErrorCode
from edge_worker.http.dependencies import CLIENT_MIDDLEWARE, client_owner, client_use_cases
from edge_worker.http.event_stream import MEDIA_TYPE, event_stream_response
from edge_worker.http.openapi import LAST_EVENT_ID, documented

EVENTS_DESCRIPTION = (
    "Server-Sent Events until the job ends. Each event has an `id:`, `event: status` (the "
    "status or stage changed; always a stream's first event) or `event: progress` (only "
    "progress, queue position or ETA changed), and `data:` the job exactly as "
    "`GET /status/{job_id}` returns it. A `: keepalive` comment comes every 15 s of quiet. "
    "The stream closes right after the event with a final status, or after the server's "
    "maximum lifetime (5 minutes by default): reconnect with `Last-Event-ID` to resume "
    "without repeats. Browsers read it with `fetch()` (EventSource cannot send the key)."
)


@get(
    "/jobs/{job_id:str}/events",
    **documented(
        "streamJobEvents",
        [ErrorCode.JOB_NOT_FOUND],
        headers=[LAST_EVENT_ID],
        responses={
            200: ResponseSpec(
                data_container=str,
                media_type=MEDIA_TYPE,
                generate_examples=False,
                description="The job's events as `text/event-stream`",
            )
        },
    ),
    summary="A job's status and progress, live, as Server-Sent Events",
    description=EVENTS_DESCRIPTION,
)
async def job_events(job_id: FromPath[str], request: Request[Any, Any, Any]) -> Stream:
    watch = client_use_cases(request).watch
    stream = await watch.open_stream(
        client_owner(request), job_id, request.headers.get("last-event-id")
    )
    return event_stream_response(stream)


job_events_router = Router(path="/", route_handlers=[job_events], middleware=CLIENT_MIDDLEWARE)
