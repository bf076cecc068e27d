"""The SDK against the real local stack: sync and async, inputs of every kind, cancel, list."""

import asyncio
import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from avatar_client import AsyncAvatarClient, AvatarClient, Job
from avatar_client.errors import JobFailed, JobNotFound, ResultNotReady, WaitTimeout
from contracts import JobStatus
from tests.conftest import png_bytes
from tests.e2e.conftest import API_KEY, EXAMPLES, Stack
from tests.e2e.test_upload_to_mp4 import PNG_HEADER_BYTES, audio_seconds, check_mp4

PORTRAIT = EXAMPLES / "portrait.png"
SPEECH = EXAMPLES / "speech.wav"


@pytest.fixture
def examples_url() -> Iterator[str]:
    """The examples directory over plain HTTP, as a URL input would be served."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(EXAMPLES))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_sync_client_runs_cancels_lists_and_downloads(
    stack: Stack, tmp_path: Path, examples_url: str
) -> None:
    with AvatarClient(stack.url, API_KEY, poll_interval=0.1) as client:
        assert client.health()["status"] == "ok"
        # No agent yet: the job stays pending, so it can be waited on in vain and cancelled.
        pending = client.submit(PORTRAIT.read_bytes(), SPEECH.open("rb"), "first", seed=7)
        assert pending.status().status is JobStatus.PENDING
        with pytest.raises(WaitTimeout):
            pending.wait(timeout=0.3)
        with pytest.raises(ResultNotReady):
            pending.status().download(tmp_path / "nothing.mp4")
        cancelled = pending.cancel()
        assert cancelled.status is JobStatus.CANCELLED and cancelled.video_url is None
        with pytest.raises(JobNotFound):
            client.job("no-such-job").status()

        stack.start_agent()
        updates: list[Job] = []
        job = client.run(
            f"{examples_url}/portrait.png",
            SPEECH,
            "A presenter",
            resolution="480p",
            quality="fast",
            on_update=updates.append,
            timeout=120,
        )
        assert job.status is JobStatus.COMPLETED and job.engine == "preview"
        assert updates[-1].status is JobStatus.COMPLETED
        progress = [u.progress for u in updates if u.status is JobStatus.PROCESSING]
        assert progress == sorted(progress)
        out = job.download(tmp_path / "out.mp4")
        check_mp4(out, audio_seconds(SPEECH), 480)
        assert client.job(job.id).result().download(tmp_path / "again.mp4").read_bytes() == (
            out.read_bytes()
        )

        listed = list(client.jobs())
        assert [j.id for j in listed] == [job.id, pending.id]
        assert [j.id for j in client.jobs(limit=1)] == [job.id]
        assert [j.id for j in client.jobs(status="cancelled")] == [pending.id]
        assert [j.id for j in client.jobs(status=[JobStatus.COMPLETED, "failed"])] == [job.id]


def test_one_idempotency_key_gives_back_one_job(stack: Stack) -> None:
    with AvatarClient(stack.url, API_KEY) as client:
        first = client.submit(PORTRAIT, SPEECH, "same", idempotency_key="order-42")
        again = client.submit(PORTRAIT, SPEECH, "same", idempotency_key="order-42")
        other = client.submit(PORTRAIT, SPEECH, "same")
    assert first.id == again.id != other.id


def test_a_failed_job_raises_job_failed_from_run(stack: Stack) -> None:
    stack.start_agent()
    undecodable = png_bytes()[:PNG_HEADER_BYTES] + bytes(range(256)) * 64
    with (
        AvatarClient(stack.url, API_KEY, poll_interval=0.1) as client,
        pytest.raises(JobFailed) as caught,
    ):
        client.run(undecodable, SPEECH, "x", resolution="480p", timeout=120)
    assert caught.value.code == "INVALID_INPUT"
    assert caught.value.job.status is JobStatus.FAILED


def test_async_client_mirrors_the_sync_one(stack: Stack, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with AsyncAvatarClient(stack.url, API_KEY, poll_interval=0.1) as client:
            assert (await client.health())["status"] == "ok"
            pending = await client.submit(PORTRAIT, SPEECH.read_bytes(), "first")
            assert (await pending.cancel()).status is JobStatus.CANCELLED
            stack.start_agent()
            seen: list[float] = []

            async def on_update(job: Job) -> None:
                seen.append(job.progress)

            job = await client.run(
                PORTRAIT.open("rb"), SPEECH, "A presenter", resolution="480p", on_update=on_update
            )
            assert job.status is JobStatus.COMPLETED and seen[-1] == 100
            out = await job.download(tmp_path / "async.mp4")
            check_mp4(out, audio_seconds(SPEECH), 480)
            result = await client.job(job.id).result()
            assert result.size_bytes == out.stat().st_size
            assert [j.id async for j in client.jobs()] == [job.id, pending.id]
            assert [j.id async for j in client.jobs(status="cancelled", limit=5)] == [pending.id]

    asyncio.run(scenario())
