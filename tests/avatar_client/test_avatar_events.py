"""`wait()` over the job's event stream, against a fake API (httpx.MockTransport): events
reach `on_update`, a broken stream resumes with `Last-Event-ID`, and a server without the
stream, or one whose stream keeps breaking, is polled instead."""

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from avatar_client import AsyncAvatarClient, AvatarClient, Job, RetryPolicy, errors
from avatar_client.events import EventParser, ServerEvent
from tests.avatar_client.avatar_fakes import (
    API_KEY,
    BASE_URL,
    JOB_ID,
    SIGNED_URL,
    FakeApi,
    envelope,
    job,
    make_client,
)
from tests.conftest import run

EVENTS_PATH = f"/jobs/{JOB_ID}/events"
PENDING = job(queue_position=2)
WORKING = job(status="processing", stage="generating", progress=40.0, eta_seconds=9)
DONE = job(status="completed", stage="done", progress=100.0, result_url=SIGNED_URL)


def message(event_id: int, kind: str, body: dict[str, Any]) -> bytes:
    return f"id: {event_id}\r\nevent: {kind}\r\ndata: {json.dumps(body)}\r\n\r\n".encode()


class Broken(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response body that delivers `chunks`, then the connection breaks."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks
        raise httpx.ReadError("connection reset")

    async def __aiter__(self) -> Any:
        for chunk in self.chunks:
            yield chunk
        raise httpx.ReadError("connection reset")


def sse(*chunks: bytes, broken: bool = False) -> httpx.Response:
    headers = {"content-type": "text/event-stream; charset=utf-8"}
    if broken:
        return httpx.Response(200, headers=headers, stream=Broken(list(chunks)))
    return httpx.Response(200, headers=headers, content=b"".join(chunks))


def answers(*replies: httpx.Response) -> Callable[[httpx.Request], httpx.Response]:
    queue = list(replies)
    return lambda _: queue.pop(0)


def streams(api: FakeApi) -> list[httpx.Request]:
    return [r for r in api.requests if r.url.path == EVENTS_PATH]


def polls(api: FakeApi) -> int:
    return sum(1 for r in api.requests if r.url.path.startswith("/status/"))


def test_wait_follows_the_stream_and_reports_each_event() -> None:
    api = FakeApi([PENDING])
    api.overrides[EVENTS_PATH] = answers(
        sse(
            message(1, "status", PENDING),
            b": keepalive\n\n",
            message(2, "status", WORKING),
            message(3, "progress", {**WORKING, "progress": 70.0}),
            message(4, "status", DONE),
        )
    )
    seen: list[Job] = []
    with make_client(api) as client:
        final = client.job(JOB_ID).wait(on_update=seen.append)
    assert [(j.status, j.progress) for j in seen] == [
        ("pending", 0.0),
        ("processing", 40.0),
        ("processing", 70.0),
        ("completed", 100.0),
    ]
    assert final.video_url == SIGNED_URL and polls(api) == 0
    (request,) = streams(api)
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert request.headers["Accept"] == "text/event-stream"
    assert "Last-Event-ID" not in request.headers


def test_a_broken_stream_resumes_after_the_last_event() -> None:
    api, sleeps = FakeApi([PENDING]), []
    api.overrides[EVENTS_PATH] = answers(
        sse(message(7, "status", PENDING), broken=True),
        sse(message(8, "status", DONE)),
    )
    with make_client(api, sleeps) as client:
        assert client.job(JOB_ID).wait().status == "completed"
    first, second = streams(api)
    assert "Last-Event-ID" not in first.headers and second.headers["Last-Event-ID"] == "7"
    assert len(sleeps) == 1 and polls(api) == 0


def test_a_stream_the_server_ends_by_its_lifetime_is_resumed_at_once() -> None:
    api, sleeps = FakeApi([PENDING]), []
    api.overrides[EVENTS_PATH] = answers(
        sse(message(1, "status", PENDING)), sse(b": keepalive\n\n"), sse(message(2, "status", DONE))
    )
    with make_client(api, sleeps) as client:
        assert client.job(JOB_ID).wait().status == "completed"
    assert [r.headers.get("Last-Event-ID") for r in streams(api)] == [None, "1", "1"]
    assert sleeps == []


@pytest.mark.parametrize(
    "no_stream",
    [
        lambda _: envelope(404, "NOT_FOUND", "no such route"),
        lambda _: envelope(405, "METHOD_NOT_ALLOWED", "wrong method"),
        lambda _: httpx.Response(200, json=PENDING),  # not an event stream
    ],
)
def test_a_server_without_the_stream_is_polled(
    no_stream: Callable[[httpx.Request], httpx.Response],
) -> None:
    api, sleeps = FakeApi([PENDING, DONE]), []
    api.overrides[EVENTS_PATH] = no_stream
    seen: list[Job] = []
    with make_client(api, sleeps) as client:
        assert client.job(JOB_ID).wait(on_update=seen.append).status == "completed"
    assert len(streams(api)) == 1 and polls(api) == 2 and sleeps == [1.0]
    assert [j.status for j in seen] == ["pending", "completed"]


def test_a_stream_that_keeps_breaking_gives_way_to_polling() -> None:
    api, sleeps = FakeApi([DONE]), []
    api.overrides[EVENTS_PATH] = answers(
        envelope(503, "STORAGE_ERROR", "busy"),
        sse(broken=True),
        sse(),  # ends at once, having said nothing
    )
    client = AvatarClient(
        BASE_URL,
        API_KEY,
        http=httpx.Client(transport=httpx.MockTransport(api)),
        sleep=sleeps.append,
        retry=RetryPolicy(random=lambda: 1.0),
    )
    with client:
        assert client.job(JOB_ID).wait().status == "completed"
    assert len(streams(api)) == 3 and polls(api) == 1 and sleeps == [0.5, 1.0]


def test_an_error_answer_is_raised_as_polling_would() -> None:
    api = FakeApi([DONE])
    api.overrides[EVENTS_PATH] = lambda _: envelope(401, "UNAUTHORIZED", "invalid key")
    with make_client(api) as client, pytest.raises(errors.Unauthorized):
        client.job(JOB_ID).wait()


def test_the_wait_timeout_holds_while_streaming() -> None:
    now = [0.0]

    def slow_events(_: httpx.Request) -> httpx.Response:
        now[0] += 6  # the events took six seconds to come
        return sse(message(1, "status", PENDING), message(2, "progress", WORKING))

    api = FakeApi([PENDING])
    api.overrides[EVENTS_PATH] = slow_events
    client = AvatarClient(
        BASE_URL,
        API_KEY,
        http=httpx.Client(transport=httpx.MockTransport(api)),
        sleep=lambda s: None,
        clock=lambda: now[0],
    )
    with client, pytest.raises(errors.WaitTimeout):
        client.job(JOB_ID).wait(timeout=5)
    assert polls(api) == 0


def test_the_async_client_follows_the_stream_and_resumes_it() -> None:
    api, sleeps = FakeApi([PENDING]), []
    api.overrides[EVENTS_PATH] = answers(
        sse(message(1, "status", PENDING), broken=True),
        sse(message(2, "progress", {**PENDING, "queue_position": 1}), message(3, "status", DONE)),
    )
    seen: list[tuple[str, int | None]] = []

    async def record(update: Job) -> None:
        seen.append((update.status, update.queue_position))

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def scenario() -> str:
        client = AsyncAvatarClient(
            BASE_URL,
            API_KEY,
            http=httpx.AsyncClient(transport=httpx.MockTransport(api)),
            sleep=sleep,
        )
        async with client:
            return (await client.job(JOB_ID).wait(on_update=record)).status

    assert run(scenario()) == "completed"
    assert seen == [("pending", 2), ("pending", 1), ("completed", None)]
    assert [r.headers.get("Last-Event-ID") for r in streams(api)] == [None, "1"]
    assert len(sleeps) == 1 and polls(api) == 0


def test_the_parser_reads_events_as_the_specification_says() -> None:
    parser = EventParser()
    lines = [": a comment", "retry: 10", "id: 5", "event: status", "data: a", "data:b", ""]
    lines += ["", "data: only data", "", "id: x\0y", "data: kept id", ""]
    events = [event for line in lines if (event := parser.feed(line)) is not None]
    assert events == [
        ServerEvent("status", "a\nb", "5"),
        ServerEvent("message", "only data", "5"),
        ServerEvent("message", "kept id", "5"),
    ]
