"""The SDK against a fake API (httpx.MockTransport): request shapes, upload planning,
retries, error mapping, pagination, polling, inputs and configuration."""

import asyncio
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from avatar_client import AsyncAvatarClient, AvatarClient, Job, RetryPolicy, errors
from avatar_client.config import DEV_SECRETS_FILE, dev_api_key, resolve_api_key, resolve_url
from avatar_client.retry import parse_retry_after
from contracts import ErrorCode, JobStatus, Quality, Resolution
from tests.avatar_client.avatar_fakes import (
    API_KEY,
    BASE_URL,
    JOB_ID,
    SIGNED_URL,
    VIDEO,
    FakeApi,
    envelope,
    job,
    make_client,
    write_media,
)
from tests.conftest import run

PUT_HOST = "store.test"
COMPLETED = job(status="completed", progress=100, stage="done", result_url=SIGNED_URL)


def health_with(max_request_bytes: int, **limits: int) -> Callable[[httpx.Request], httpx.Response]:
    body = {"status": "ok", "version": "0.1.0", "checks": {}}
    body["limits"] = {"max_request_bytes": max_request_bytes, **limits}
    return lambda _: httpx.Response(200, json=body)


class Storage:
    """`POST /uploads` grants and the signed PUTs they lead to."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.declared: dict[str, Any] = {}

    def grant(self, request: httpx.Request) -> httpx.Response:
        self.declared = json.loads(request.content)
        return httpx.Response(
            200,
            json={
                kind: {
                    "upload_id": f"up_{kind}",
                    "url": f"http://{PUT_HOST}/{kind}?sig=1",
                    "method": "PUT",
                    "headers": {"Content-Type": spec["content_type"]},
                    "expires_at": "2025-01-01T01:00:00Z",
                    "max_bytes": 10,
                    "accepted_content_types": [spec["content_type"]],
                }
                for kind, spec in self.declared.items()
            },
        )

    def install(self, api: FakeApi) -> None:
        api.overrides["/uploads"] = self.grant
        api.overrides["/image"] = self.put
        api.overrides["/audio"] = self.put

    def put(self, request: httpx.Request) -> httpx.Response:
        assert request.method == "PUT" and "Authorization" not in request.headers
        assert int(request.headers["Content-Length"]) == len(request.content)
        self.objects[request.url.path.strip("/")] = request.content
        return httpx.Response(200)


def sent(api: FakeApi, method: str, path: str) -> list[httpx.Request]:
    return [r for r in api.requests if r.method == method and r.url.path == path]


# --- submit: inline, or through /uploads ---------------------------------------------------


def test_submit_posts_multipart_with_auth_and_an_idempotency_key(tmp_path: Path) -> None:
    image, audio = write_media(tmp_path)
    api = FakeApi()
    with make_client(api) as client:
        handle = client.submit(
            image, audio, "a person talking", resolution=Resolution.P480, seed=7, quality="fast"
        )
    assert handle.id == JOB_ID and repr(handle) == f"JobHandle('{JOB_ID}')"
    (request,) = sent(api, "POST", "/generate")
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert len(request.headers["Idempotency-Key"]) == 36  # a uuid4
    assert request.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    for part in (
        b'name="image"; filename="portrait.png"',
        b"Content-Type: image/png",
        b'name="audio"; filename="speech.wav"',
        b'name="prompt"\r\n\r\na person talking',
        b'name="resolution"\r\n\r\n480p',
        b'name="seed"\r\n\r\n7',
        b'name="quality"\r\n\r\nfast',
    ):
        assert part in request.content
    assert image.read_bytes() in request.content and audio.read_bytes() in request.content
    assert int(request.headers["Content-Length"]) == len(request.content)


def test_submit_sends_only_the_settings_given(tmp_path: Path) -> None:
    image, audio = write_media(tmp_path)
    api = FakeApi()
    with make_client(api) as client:
        client.submit(image, audio, "hi", idempotency_key="order-42")
    (request,) = sent(api, "POST", "/generate")
    assert request.headers["Idempotency-Key"] == "order-42"
    for absent in (b'name="seed"', b'name="resolution"', b'name="quality"'):
        assert absent not in request.content


def test_files_above_the_advertised_cap_go_through_uploads(tmp_path: Path) -> None:
    image, audio = write_media(tmp_path)
    api, storage = FakeApi(), Storage()
    api.overrides["/health"] = health_with(1000)
    storage.install(api)
    with make_client(api) as client:
        client.submit(image, audio, "hi", seed=3, quality=Quality.FAST, idempotency_key="k1")
        client.submit(image, audio, "again")
    assert storage.declared == {
        "image": {"content_type": "image/png", "size_bytes": image.stat().st_size},
        # Sniffed from the bytes where they are media; else guessed from the name.
        "audio": {"content_type": "audio/x-wav", "size_bytes": audio.stat().st_size},
    }
    assert storage.objects == {"image": image.read_bytes(), "audio": audio.read_bytes()}
    first = sent(api, "POST", "/generate")[0]
    assert first.headers["Content-Type"] == "application/json"
    assert first.headers["Idempotency-Key"] == "k1"
    assert json.loads(first.content) == {
        "prompt": "hi",
        "seed": 3,
        "quality": "fast",
        "image_upload_id": "up_image",
        "audio_upload_id": "up_audio",
    }
    assert len(sent(api, "GET", "/health")) == 1  # asked once per client


def test_a_413_for_the_whole_body_falls_back_to_uploads_once_with_the_same_key(
    tmp_path: Path,
) -> None:
    image, audio = write_media(tmp_path)
    api, storage = FakeApi(), Storage()
    storage.install(api)

    def generate(request: httpx.Request) -> httpx.Response:
        if request.headers["Content-Type"].startswith("multipart/"):
            return envelope(413, "PAYLOAD_TOO_LARGE", "too large", limit_bytes=100)
        return httpx.Response(200, json=job())

    api.overrides["/generate"] = generate
    with make_client(api) as client:
        client.submit(image, audio, "hi")
        client.submit(image, audio, "again")
    inline, via_uploads, second = sent(api, "POST", "/generate")
    assert inline.headers["Idempotency-Key"] == via_uploads.headers["Idempotency-Key"]
    assert second.headers["Content-Type"] == "application/json"  # the cap is remembered
    assert len(sent(api, "POST", "/uploads")) == 2


def test_a_413_for_one_file_is_raised_since_storage_would_refuse_it_too(tmp_path: Path) -> None:
    image, audio = write_media(tmp_path)
    api = FakeApi()
    api.overrides["/generate"] = lambda _: envelope(
        413, "PAYLOAD_TOO_LARGE", "audio too large", field="audio", limit_bytes=10
    )
    with make_client(api) as client, pytest.raises(errors.PayloadTooLarge) as caught:
        client.submit(image, audio, "hi")
    assert caught.value.details == {"field": "audio", "limit_bytes": 10}
    assert not sent(api, "POST", "/uploads")


def test_a_health_check_that_fails_leaves_the_cap_unknown_and_is_asked_again(
    tmp_path: Path,
) -> None:
    image, audio = write_media(tmp_path)
    api = FakeApi()
    api.overrides["/health"] = lambda _: httpx.Response(404, text="no health here")
    with make_client(api) as client:
        client.submit(image, audio, "one")
        client.submit(image, audio, "two")
    assert len(sent(api, "GET", "/health")) == 2
    assert len(sent(api, "POST", "/generate")) == 2


# --- inputs ---------------------------------------------------------------------------------


def test_inputs_may_be_bytes_file_objects_and_streams(tmp_path: Path) -> None:
    image, audio = write_media(tmp_path)
    api = FakeApi()
    offset = io.BytesIO(b"junk" + audio.read_bytes())
    offset.seek(4)

    class Pipe(io.RawIOBase):
        """A stream that cannot seek, like a socket or a pipe."""

        def __init__(self, data: bytes) -> None:
            self.data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            chunk = self.data.read(len(buffer))
            buffer[: len(chunk)] = chunk
            return len(chunk)

    with make_client(api) as client:
        client.submit(image.read_bytes(), offset, "bytes and an open file")
        client.submit(Pipe(image.read_bytes()), str(audio), "a pipe and a str path")
    first, second = sent(api, "POST", "/generate")
    assert b'filename="image.bin"' in first.content
    assert audio.read_bytes() in first.content and b"junk" not in first.content
    assert image.read_bytes() in second.content and audio.read_bytes() in second.content


def test_a_missing_file_is_invalid_input_before_any_request(tmp_path: Path) -> None:
    api = FakeApi()
    with make_client(api) as client, pytest.raises(errors.InvalidInput, match="not found"):
        client.submit(tmp_path / "nope.png", b"RIFF", "hi")
    assert not sent(api, "POST", "/generate")


def test_url_inputs_are_fetched_without_the_key(tmp_path: Path) -> None:
    image, audio = write_media(tmp_path)
    api = FakeApi()
    api.overrides["/media/"] = lambda request: httpx.Response(
        200, content=audio.read_bytes() if request.url.path.endswith(".wav") else image.read_bytes()
    )
    with make_client(api) as client:
        client.submit(f"{BASE_URL}/media/face.png", "HTTPS://api.test/media/talk%20one.wav", "hi")
    fetches = [r for r in api.requests if r.url.path.startswith("/media/")]
    assert all("Authorization" not in r.headers for r in fetches)
    (request,) = sent(api, "POST", "/generate")
    assert b'filename="face.png"' in request.content
    assert b'filename="talk one.wav"' in request.content
    assert audio.read_bytes() in request.content


def test_url_inputs_over_the_servers_limit_stop_while_streaming(tmp_path: Path) -> None:
    api = FakeApi()
    api.overrides["/health"] = health_with(10**9, max_image_bytes=50, max_audio_bytes=10**6)
    api.overrides["/media/"] = lambda _: httpx.Response(200, content=b"\x89PNG" + b"x" * 500)
    with make_client(api) as client, pytest.raises(errors.PayloadTooLarge) as caught:
        client.submit(f"{BASE_URL}/media/face.png", b"RIFF", "hi")
    assert caught.value.details == {"field": "image", "limit_bytes": 50}


def test_a_url_input_that_fails_raises_its_error(tmp_path: Path) -> None:
    api = FakeApi()
    api.overrides["/media/gone"] = lambda _: httpx.Response(404, text="gone")
    api.overrides["/media/reset"] = lambda _: httpx.Response(200, stream=Broken())
    with make_client(api) as client:
        with pytest.raises(errors.NotFound):
            client.submit(f"{BASE_URL}/media/gone.png", b"RIFF", "hi")
        with pytest.raises(errors.ConnectionFailed, match="broke"):
            client.submit(f"{BASE_URL}/media/reset.png", b"RIFF", "hi")


class Broken(httpx.SyncByteStream):
    """A body that breaks after its first chunk."""

    def __iter__(self) -> Any:
        yield b"\x89PNG"
        raise httpx.ReadError("connection reset")


# --- retries ------------------------------------------------------------------------------


def flaky(
    answers: list[httpx.Response | type[httpx.TransportError]],
) -> Callable[[httpx.Request], httpx.Response]:
    def answer(request: httpx.Request) -> httpx.Response:
        next_answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(next_answer, httpx.Response):
            return next_answer
        raise next_answer("down", request=request)

    return answer


def retrying_client(api: FakeApi, sleeps: list[float], **policy: Any) -> AvatarClient:
    return AvatarClient(
        BASE_URL,
        API_KEY,
        http=httpx.Client(transport=httpx.MockTransport(api)),
        sleep=sleeps.append,
        retry=RetryPolicy(random=lambda: 0.5, wall_clock=lambda: 1_000_000.0, **policy),
    )


def test_503_429_and_network_errors_are_retried_with_the_same_idempotency_key(
    tmp_path: Path,
) -> None:
    image, audio = write_media(tmp_path)
    api, sleeps = FakeApi(), []
    api.overrides["/generate"] = flaky(
        [
            envelope(503, "STORAGE_ERROR", "storage down"),
            httpx.ConnectError,
            envelope(429, "RATE_LIMITED", "slow down"),
            httpx.Response(200, json=job()),
        ]
    )
    with retrying_client(api, sleeps) as client:
        client.submit(image, audio, "hi")
    attempts = sent(api, "POST", "/generate")
    assert len(attempts) == 4
    assert len({r.headers["Idempotency-Key"] for r in attempts}) == 1
    assert all(image.read_bytes() in r.content for r in attempts)  # re-sent from the start
    assert sleeps == [0.25, 0.5, 1.0]  # full jitter (0.5 of 0.5 s, 1 s, 2 s)


@pytest.mark.parametrize(("refusal", "flavour"), [(409, "sync"), (412, "sync"), (412, "async")])
def test_a_put_retried_after_its_answer_was_lost_counts_as_stored(
    tmp_path: Path, refusal: int, flavour: str
) -> None:
    """Upload URLs write once: the retry is refused because the lost try stored the file."""
    image, audio = write_media(tmp_path)
    api, storage, sleeps = FakeApi(), Storage(), []
    api.overrides["/health"] = health_with(1000)
    storage.install(api)
    tries: list[int] = []

    def stored_then_lost(request: httpx.Request) -> httpx.Response:
        tries.append(1)
        if len(tries) > 1:
            return httpx.Response(refusal, text="already stored")
        storage.put(request)
        raise httpx.ReadError("answer lost", request=request)

    api.overrides["/audio"] = stored_then_lost
    if flavour == "sync":
        with retrying_client(api, sleeps) as client:
            client.submit(image, audio, "hi")
    else:

        async def submit() -> None:
            async with async_client(api, sleeps) as client:
                await client.submit(image, audio, "hi")

        asyncio.run(submit())
    assert len(tries) == 2 and storage.objects["audio"] == audio.read_bytes()
    assert len(sent(api, "POST", "/generate")) == 1


def test_a_put_refused_at_its_first_try_is_an_error(tmp_path: Path) -> None:
    image, audio = write_media(tmp_path)
    api, storage = FakeApi(), Storage()
    api.overrides["/health"] = health_with(1000)
    storage.install(api)
    api.overrides["/audio"] = lambda _: envelope(409, "CONFLICT", "this upload URL was used")
    with make_client(api) as client, pytest.raises(errors.Conflict, match="was used"):
        client.submit(image, audio, "hi")
    assert not sent(api, "POST", "/generate")


def test_retry_after_is_honoured_in_seconds_and_as_a_date() -> None:
    api, sleeps = FakeApi([COMPLETED]), []
    date = format_datetime(datetime.fromtimestamp(1_000_007.0, UTC), usegmt=True)
    api.overrides["/status/"] = flaky(
        [
            httpx.Response(429, headers={"Retry-After": "3"}),
            httpx.Response(503, headers={"Retry-After": date}),
            httpx.Response(200, json=COMPLETED),
        ]
    )
    with retrying_client(api, sleeps) as client:
        assert client.job(JOB_ID).status().status is JobStatus.COMPLETED
    assert sleeps == [3.0, 7.0]


def test_a_retry_after_longer_than_the_policy_allows_is_raised_at_once() -> None:
    api, sleeps = FakeApi(), []
    api.overrides["/status/"] = lambda _: httpx.Response(
        429,
        headers={"Retry-After": "3600", "X-Request-ID": "req-1"},
        json={"error": {"code": "RATE_LIMITED", "message": "later", "details": {}}},
    )
    with retrying_client(api, sleeps) as client, pytest.raises(errors.RateLimited) as caught:
        client.job(JOB_ID).status()
    assert sleeps == [] and caught.value.request_id == "req-1"


def test_attempts_are_bounded_then_connection_failed() -> None:
    api, sleeps = FakeApi(), []
    api.overrides["/status/"] = flaky([httpx.ConnectTimeout])
    with (
        retrying_client(api, sleeps, max_attempts=3) as client,
        pytest.raises(errors.ConnectionFailed, match="cannot reach") as caught,
    ):
        client.job(JOB_ID).status()
    assert caught.value.status_code == 0 and caught.value.code == "CONNECTION_FAILED"
    assert len(sleeps) == 2


def test_client_errors_are_not_retried() -> None:
    api, sleeps = FakeApi(), []
    with retrying_client(api, sleeps) as client, pytest.raises(errors.JobNotFound):
        client.job("other").status()
    assert sleeps == []


def test_backoff_doubles_up_to_its_cap_and_retry_after_parses_or_not() -> None:
    policy = RetryPolicy(base_delay=1, max_delay=5, random=lambda: 1.0)
    assert [policy.backoff(n) for n in (1, 2, 3, 4)] == [1, 2, 4, 5]
    assert parse_retry_after(None, 0) is None
    assert parse_retry_after("soon", 0) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00", 0) is None  # no zone: unreadable
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 2e9) == 0.0  # already past


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("code", list(ErrorCode))
def test_every_error_code_has_its_exception(code: ErrorCode) -> None:
    api = FakeApi()
    api.overrides["/status/"] = lambda _: httpx.Response(
        code.http_status,
        headers={"X-Request-ID": "req-42"},
        json={"error": {"code": code.value, "message": "m", "details": {"field": "image"}}},
    )
    with (
        retrying_client(api, [], max_attempts=1) as client,
        pytest.raises(errors.AvatarError) as caught,
    ):
        client.job(JOB_ID).status()
    error = caught.value
    assert type(error).__name__.upper().replace("_", "") == code.value.replace("_", "")
    assert (error.status_code, error.code, error.message) == (code.http_status, code.value, "m")
    assert error.details == {"field": "image"} and error.request_id == "req-42"
    assert str(error) == f"{code.value}: m"


def test_answers_without_an_envelope_are_typed_by_status() -> None:
    api = FakeApi()
    api.overrides["/status/a"] = lambda _: httpx.Response(404, text="<html>nope</html>")
    api.overrides["/status/b"] = lambda _: httpx.Response(418, json={"error": "teapot"})
    api.overrides["/status/c"] = lambda _: httpx.Response(
        401, json={"error": {"code": "NEW_CODE", "message": "later", "details": []}}
    )
    api.overrides["/status/d"] = lambda _: httpx.Response(
        400, json={"error": {"code": "NEW_CODE", "message": "unknown"}}
    )
    with make_client(api) as client:
        with pytest.raises(errors.NotFound) as a:
            client.job("a").status()
        with pytest.raises(errors.AvatarError) as b:
            client.job("b").status()
        with pytest.raises(errors.Unauthorized):
            client.job("c").status()
        with pytest.raises(errors.AvatarError) as d:
            client.job("d").status()
    assert (a.value.code, a.value.message) == ("HTTP_404", "<html>nope</html>")
    assert type(b.value) is errors.AvatarError and b.value.code == "HTTP_418"
    assert type(d.value) is errors.AvatarError and d.value.code == "NEW_CODE"


def test_an_unexpected_success_body_is_invalid_response() -> None:
    api = FakeApi()
    api.overrides["/status/"] = lambda _: httpx.Response(200, json={"nope": 1})
    api.overrides["/health"] = lambda _: httpx.Response(200, json=[1])
    with make_client(api) as client:
        with pytest.raises(errors.InvalidResponse, match="unexpected response body"):
            client.job(JOB_ID).status()
        with pytest.raises(errors.InvalidResponse, match="not a JSON object"):
            client.health()
    api.overrides["/health"] = lambda _: httpx.Response(200, text="not json")
    with make_client(api) as client, pytest.raises(errors.InvalidResponse):
        client.health()


# --- jobs, status, wait, run, cancel, result ------------------------------------------------


def test_jobs_walks_every_page_and_stops_at_the_limit() -> None:
    api = FakeApi()
    ids = [f"job-{n}" for n in range(5)]
    pages = {None: (ids[:2], "c1"), "c1": (ids[2:4], "c2"), "c2": (ids[4:], None)}

    def listing(request: httpx.Request) -> httpx.Response:
        page, cursor = pages[request.url.params.get("cursor")]
        return httpx.Response(
            200, json={"jobs": [job(job_id=i) for i in page], "next_cursor": cursor}
        )

    api.overrides["/jobs"] = listing
    with make_client(api) as client:
        assert [j.id for j in client.jobs()] == ids
        assert [j.id for j in client.jobs(status=["pending", JobStatus.PROCESSING], limit=3)] == (
            ids[:3]
        )
        assert list(client.jobs(limit=0)) == []
    lists = sent(api, "GET", "/jobs")
    assert [r.url.params.get("limit") for r in lists] == ["100", "100", "100", "3", "1"]
    assert lists[3].url.params["status"] == "pending,processing"
    assert "status" not in lists[0].url.params


def test_wait_polls_until_terminal_and_reports_each_view() -> None:
    api, sleeps = FakeApi([job(), job(status="processing", progress=40), COMPLETED]), []
    seen: list[Job] = []
    with make_client(api, sleeps) as client:
        final = client.job(JOB_ID).wait(on_update=seen.append)
    assert [j.status for j in seen] == ["pending", "processing", "completed"]
    assert final.video_url == SIGNED_URL and sleeps == [1.0, 1.0]


def test_wait_times_out_with_a_wait_timeout_that_is_a_timeout_error() -> None:
    now = [0.0]
    api = FakeApi([job()])
    client = AvatarClient(
        BASE_URL,
        API_KEY,
        http=httpx.Client(transport=httpx.MockTransport(api)),
        sleep=lambda s: now.__setitem__(0, now[0] + s),
        clock=lambda: now[0],
        poll_interval=2,
    )
    with client, pytest.raises(TimeoutError) as caught:
        client.job(JOB_ID).wait(timeout=5)
    assert isinstance(caught.value, errors.WaitTimeout) and now[0] == 5


def test_run_returns_the_completed_job_or_raises_job_failed(tmp_path: Path) -> None:
    image, audio = write_media(tmp_path)
    failed = job(status="failed", error={"code": "TIMEOUT", "message": "too slow"})
    with make_client(FakeApi([COMPLETED])) as client:
        assert client.run(image, audio, "hi").status is JobStatus.COMPLETED
    with make_client(FakeApi([failed])) as client, pytest.raises(errors.JobFailed) as caught:
        client.run(image, audio, "hi")
    assert (caught.value.code, caught.value.message) == ("TIMEOUT", "too slow")
    with (
        make_client(FakeApi([job(status="cancelled")])) as client,
        pytest.raises(errors.JobFailed, match=r"CANCELLED: job .* ended cancelled"),
    ):
        client.run(image, audio, "hi")


def test_cancel_deletes_and_result_parses() -> None:
    api = FakeApi()
    api.overrides["/jobs/"] = lambda _: httpx.Response(200, json=job(status="cancelled"))
    with make_client(api) as client:
        handle = client.job(JOB_ID)
        assert handle.cancel().status is JobStatus.CANCELLED
        result = handle.result()
    assert sent(api, "DELETE", f"/jobs/{JOB_ID}")
    assert (result.url, result.width) == (SIGNED_URL, 720)


def test_job_ids_are_path_escaped() -> None:
    api = FakeApi()
    with make_client(api) as client, pytest.raises(errors.JobNotFound):
        client.job("../health").status()
    assert api.requests[-1].url.raw_path == b"/status/..%2Fhealth"


# --- downloads ----------------------------------------------------------------------------


def test_downloads_stream_without_the_key(tmp_path: Path) -> None:
    api = FakeApi([COMPLETED])
    with make_client(api) as client:
        job_view = client.job(JOB_ID).status()
        path = job_view.download(tmp_path / "out.mp4")
        again = client.job(JOB_ID).result().download(str(tmp_path / "again.mp4"))
        pending = Job.model_validate(job()).bind(client)
        via_result = pending.download(tmp_path / "via-result.mp4")
    assert path.read_bytes() == again.read_bytes() == via_result.read_bytes() == VIDEO
    blob_requests = [r for r in api.requests if r.url.host == "blobs.test"]
    assert len(blob_requests) == 3
    assert all("Authorization" not in r.headers for r in blob_requests)


def test_download_resolves_relative_urls_and_leaves_nothing_on_error(tmp_path: Path) -> None:
    api = FakeApi()
    api.overrides["/blobs/ok"] = lambda _: httpx.Response(200, content=VIDEO)
    api.overrides["/blobs/missing"] = lambda _: envelope(404, "NOT_FOUND", "no such blob")
    api.overrides["/blobs/reset"] = lambda _: httpx.Response(200, stream=Broken())
    with make_client(api) as client:
        assert client.download("/blobs/ok", tmp_path / "ok.mp4").read_bytes() == VIDEO
        with pytest.raises(errors.NotFound):
            client.download("blobs/missing", tmp_path / "missing.mp4")
        with pytest.raises(errors.ConnectionFailed):
            client.download("/blobs/reset", tmp_path / "reset.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.mp4"]


def test_an_unbound_job_cannot_download(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="not made by a client"):
        Job.model_validate(COMPLETED).download(tmp_path / "x.mp4")


# --- configuration ----------------------------------------------------------------------


def test_url_and_key_come_from_arguments_then_the_environment(tmp_path: Path) -> None:
    env = {"AVATAR_URL": "https://api.example.com/", "AVATAR_API_KEY": "sk_env"}
    assert resolve_url(None, env) == "https://api.example.com"
    assert resolve_url("http://other:1", env) == "http://other:1"
    assert resolve_url(None, {}) == "http://127.0.0.1:8787"
    assert resolve_api_key("sk_arg", env, "https://x", tmp_path) == "sk_arg"
    assert resolve_api_key(None, env, "https://x", tmp_path) == "sk_env"
    client = AvatarClient(env=env, http=httpx.Client())
    assert (client.url, client._api_key) == ("https://api.example.com", "sk_env")


def test_a_local_edge_falls_back_to_the_dev_key_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = tmp_path / ".avatar" / DEV_SECRETS_FILE
    secrets.parent.mkdir()
    secrets.write_text(json.dumps({"API_KEYS": " sk_local_1, sk_local_2", "AGENT_TOKEN": "t"}))
    monkeypatch.chdir(tmp_path)
    for url in ("http://127.0.0.1:8787", "http://localhost:9000", "http://[::1]:8787"):
        assert AvatarClient(url, env={}, http=httpx.Client())._api_key == "sk_local_1"
    with pytest.raises(errors.MissingApiKey, match="AVATAR_API_KEY"):
        AvatarClient("https://api.example.com", env={})  # never a local key for a remote
    with pytest.raises(errors.MissingApiKey):
        AvatarClient("http://example", env={})


def test_an_unreadable_dev_key_file_gives_no_key(tmp_path: Path) -> None:
    path = tmp_path / DEV_SECRETS_FILE
    assert dev_api_key(path) is None
    for content in ("{", "[1]", '{"API_KEYS": 5}', '{"API_KEYS": " , "}'):
        path.write_text(content)
        assert dev_api_key(path) is None


def test_an_injected_http_client_stays_open_and_an_owned_one_is_closed() -> None:
    http = httpx.Client(transport=httpx.MockTransport(FakeApi()))
    with AvatarClient(BASE_URL, API_KEY, http=http):
        pass
    assert not http.is_closed
    owned = AvatarClient(BASE_URL, API_KEY)
    with owned:
        pass
    assert owned._http.is_closed


# --- the async mirror -----------------------------------------------------------------------


def async_client(api: FakeApi, sleeps: list[float]) -> AsyncAvatarClient:
    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    return AsyncAvatarClient(
        BASE_URL,
        API_KEY,
        http=httpx.AsyncClient(transport=httpx.MockTransport(api)),
        sleep=sleep,
        retry=RetryPolicy(random=lambda: 0.5),
    )


def test_the_async_client_uploads_retries_pages_and_downloads(tmp_path: Path) -> None:
    image, audio = write_media(tmp_path)
    api, storage, sleeps = FakeApi([job(), COMPLETED]), Storage(), []
    api.overrides["/health"] = health_with(1000)
    storage.install(api)
    api.overrides["/generate"] = flaky(
        [httpx.ConnectError, envelope(503, "STORAGE_ERROR", "x"), httpx.Response(200, json=job())]
    )
    api.overrides["/jobs/"] = lambda _: httpx.Response(200, json=job(status="cancelled"))
    api.overrides["/jobs"] = lambda r: httpx.Response(
        200,
        json={
            "jobs": [job(job_id=f"j{r.url.params.get('cursor', '0')}")],
            "next_cursor": None if r.url.params.get("cursor") else "1",
        },
    )
    api.overrides["/media/"] = lambda _: httpx.Response(200, content=audio.read_bytes())
    updates: list[str] = []

    async def scenario() -> None:
        async with async_client(api, sleeps) as client:
            assert (await client.health())["limits"]["max_request_bytes"] == 1000
            done = await client.run(
                image, f"{BASE_URL}/media/a.wav", "hi", on_update=lambda j: updates.append(j.status)
            )
            assert done.status is JobStatus.COMPLETED
            assert (await done.download(tmp_path / "a.mp4")).read_bytes() == VIDEO
            handle = client.job(JOB_ID)
            assert repr(handle) == f"AsyncJobHandle('{JOB_ID}')"
            assert (await handle.status()).video_url == SIGNED_URL
            assert (await handle.cancel()).status is JobStatus.CANCELLED
            result = await handle.result()
            assert (await result.download(tmp_path / "r.mp4")).read_bytes() == VIDEO
            pending = (await client._fetch_status(JOB_ID)).model_copy(update={"result_url": None})
            assert (await pending.download(tmp_path / "p.mp4")).read_bytes() == VIDEO
            assert [j.id async for j in client.jobs()] == ["j0", "j1"]
            assert [j.id async for j in client.jobs(limit=1)] == ["j0"]

    run(scenario())
    assert storage.objects == {"image": image.read_bytes(), "audio": audio.read_bytes()}
    assert updates == ["pending", "completed"]
    keys = {r.headers["Idempotency-Key"] for r in sent(api, "POST", "/generate")[:3]}
    assert len(keys) == 1 and sleeps[:2] == [0.25, 0.5]


def test_the_async_run_raises_job_failed() -> None:
    api = FakeApi([job(status="expired")])

    async def scenario() -> None:
        async with async_client(api, []) as client:
            await client.run(b"\x89PNG", b"RIFF", "hi")

    with pytest.raises(errors.JobFailed, match="EXPIRED"):
        run(scenario())


def test_submit_sends_parallel_in_the_form_and_in_json(tmp_path: Path) -> None:
    image, audio = write_media(tmp_path)
    api = FakeApi()
    with make_client(api) as client:
        client.submit(image, audio, "hi", parallel="auto")
    (request,) = sent(api, "POST", "/generate")
    assert b'name="parallel"\r\n\r\nauto' in request.content
    api, storage, sleeps = FakeApi(), Storage(), []
    api.overrides["/health"] = health_with(1000)
    storage.install(api)

    async def scenario() -> None:
        async with async_client(api, sleeps) as client:
            await client.submit(image, audio, "hi", parallel=4)

    asyncio.run(scenario())
    (uploaded,) = sent(api, "POST", "/generate")
    assert json.loads(uploaded.content)["parallel"] == 4
