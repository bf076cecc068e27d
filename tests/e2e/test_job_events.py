"""The SDK's wait() over the live stack's event stream: one stream request, no status
polls, every change seen as it happens; and how long the completion takes to arrive."""

import time

import httpx

from avatar_client import AvatarClient, Job
from contracts import JobStatus
from tests.e2e.conftest import API_KEY, EXAMPLES, Stack


def test_wait_follows_the_stream_and_hears_the_completion_at_once(stack: Stack) -> None:
    stack.start_agent()
    paths: list[str] = []
    http = httpx.Client(event_hooks={"request": [lambda request: paths.append(request.url.path)]})
    heard: list[tuple[float, Job]] = []
    with http, AvatarClient(stack.url, API_KEY, http=http) as client:
        handle = client.submit(EXAMPLES / "portrait.png", EXAMPLES / "speech.wav", "Hi")
        paths.clear()
        job = handle.wait(on_update=lambda update: heard.append((time.time(), update)), timeout=120)
    assert job.status is JobStatus.COMPLETED, stack.logs()
    assert paths == [f"/jobs/{job.id}/events"]
    working = [update.progress for _, update in heard if update.status is JobStatus.PROCESSING]
    assert len(working) >= 2 and working == sorted(working) and 0 < working[-1] < 100
    arrived, final = heard[-1]
    assert final.completed_at is not None
    latency = arrived - final.completed_at.timestamp()
    print(f"\ncompletion -> SSE event: {latency * 1000:.0f} ms ({len(heard)} events)")
    assert 0 <= latency < 2, latency
