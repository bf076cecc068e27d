"""A job's watch as Server-Sent Events: `id:`, `event:` and `data:` lines per event (the
data being the job's view exactly as `GET /status` sends it), `: keepalive` comments.

Litestar's `ServerSentEvent` response is not used: it reads its first chunks through a
thread (`sync_to_thread`), and the Worker has none. Its message encoder is."""

from collections.abc import AsyncIterator

from litestar.response import Stream
from litestar.response.sse import ServerSentEventMessage

from edge_worker.domain.job_events import JobEvent
from edge_worker.usecases.job_watch import JobStream, Keepalive

MEDIA_TYPE = "text/event-stream"
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_KEEPALIVE = ServerSentEventMessage(data=None, comment="keepalive", sep="\n").encode()


def encode(item: JobEvent | Keepalive) -> bytes:
    if isinstance(item, Keepalive):
        return _KEEPALIVE
    data = item.view.__pydantic_serializer__.to_json(item.view).decode()
    message = ServerSentEventMessage(data=data, event=item.kind.value, id=item.event_id, sep="\n")
    return message.encode()


async def _chunks(stream: JobStream) -> AsyncIterator[bytes]:
    async for item in stream.items():
        yield encode(item)


def event_stream_response(stream: JobStream) -> Stream:
    """Each event is sent as soon as it is made (no buffering: the Worker's ASGI bridge
    turns the first chunk sent with `more_body` into a streamed response)."""
    return Stream(_chunks(stream), media_type=MEDIA_TYPE, headers=HEADERS)
