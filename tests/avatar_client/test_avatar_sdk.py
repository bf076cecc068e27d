"""The SDK against a fake API: request shapes, parsing, polling and error mapping."""

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from avatar_client import ApiError, AvatarClient, ConnectionFailed
from contracts import JobStatus, Quality, Resolution, Stage
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


def test_generate_posts_multipart_with_auth(tmp_path: Path) -> None:
    image, audio = write_media(tmp_path)
    api = FakeApi()
    with make_client(api) as client:
        view = client.generate(
            image,
            audio,
            "a person talking",
            resolution=Resolution.P480,
            seed=7,
            quality=Quality.FAST,
        )
    assert view.job_id == JOB_ID
    assert view.status is JobStatus.PENDING
    request = api.requests[0]
    assert (request.method, str(request.url)) == ("POST", f"{BASE_URL}/generate")
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert request.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    body = request.content
    for part in (
        b'name="image"; filename="portrait.png"',
        b"Content-Type: image/png",
        b'name="audio"; filename="speech.wav"',
        b'name="prompt"\r\n\r\na person talking',
        b'name="resolution"\r\n\r\n480p',
        b'name="seed"\r\n\r\n7',
        b'name="quality"\r\n\r\nfast',
    ):
        assert part in body
    assert image.read_bytes() in body
    assert audio.read_bytes() in body
    # The length is known up front because the parts are streamed from the open files.
    assert int(request.headers["Content-Length"]) == len(body)


def test_generate_omits_seed_when_unset(tmp_path: Path) -> None:
    _, audio = write_media(tmp_path)
    unknown = tmp_path / "face.weird"
    unknown.write_bytes(b"x")
    api = FakeApi()
    with make_client(api) as client:
        client.generate(unknown, audio, "hi")
    body = api.requests[0].content
    assert b'name="seed"' not in body
    assert b'name="resolution"\r\n\r\n720p' in body
    assert b'name="quality"\r\n\r\nstandard' in body
    assert b"Content-Type: application/octet-stream" in body


def test_status_and_result_parse_contract_models() -> None:
    api = FakeApi([job(status="processing", progress=42.5, stage="generating", eta_seconds=30)])
    with make_client(api) as client:
        view = client.status(JOB_ID)
        res = client.result(JOB_ID)
    assert (view.status, view.progress, view.stage) == (
        JobStatus.PROCESSING,
        42.5,
        Stage.GENERATING,
    )
    assert view.eta_seconds == 30
    assert res.url == SIGNED_URL
    assert res.size_bytes == len(VIDEO)
    assert api.paths() == [f"/status/{JOB_ID}", f"/result/{JOB_ID}"]


def test_job_id_is_path_escaped() -> None:
    api = FakeApi()
    with make_client(api) as client, pytest.raises(ApiError):
        client.status("../health")
    assert api.requests[0].url.raw_path == b"/status/..%2Fhealth"


def test_error_envelope_becomes_api_error() -> None:
    api = FakeApi()
    api.overrides["/status/"] = lambda _: envelope(
        400, "INVALID_INPUT", "prompt must be 1-2000 characters", field="prompt"
    )
    with make_client(api) as client, pytest.raises(ApiError) as caught:
        client.status(JOB_ID)
    err = caught.value
    assert (err.status_code, err.code) == (400, "INVALID_INPUT")
    assert err.message == "prompt must be 1-2000 characters"
    assert err.details == {"field": "prompt"}
    assert str(err) == "INVALID_INPUT: prompt must be 1-2000 characters"
    assert not err.transient


def test_wrong_key_is_unauthorized() -> None:
    client = AvatarClient(
        BASE_URL, "wrong", http=httpx.Client(transport=httpx.MockTransport(FakeApi()))
    )
    with pytest.raises(ApiError) as caught:
        client.result(JOB_ID)
    assert (caught.value.status_code, caught.value.code) == (401, "UNAUTHORIZED")


def test_non_envelope_error_keeps_status_and_body() -> None:
    api = FakeApi()
    api.overrides["/status/"] = lambda _: httpx.Response(502, text="<html>bad gateway</html>")
    api.overrides["/result/"] = lambda _: httpx.Response(500)
    with make_client(api) as client:
        with pytest.raises(ApiError) as caught:
            client.status(JOB_ID)
        assert (caught.value.code, caught.value.message) == ("HTTP_502", "<html>bad gateway</html>")
        assert caught.value.transient
        with pytest.raises(ApiError) as caught:
            client.result(JOB_ID)
        assert caught.value.message == "Internal Server Error"


def test_unexpected_success_body_is_invalid_response() -> None:
    api = FakeApi()
    api.overrides["/status/"] = lambda _: httpx.Response(200, json={"job_id": JOB_ID})
    api.overrides["/health"] = lambda _: httpx.Response(200, text="not json")
    with make_client(api) as client:
        with pytest.raises(ApiError) as caught:
            client.status(JOB_ID)
        assert caught.value.code == "INVALID_RESPONSE"
        with pytest.raises(ApiError, match="INVALID_RESPONSE"):
            client.health()


def test_transport_error_becomes_connection_failed() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = AvatarClient(
        BASE_URL, API_KEY, http=httpx.Client(transport=httpx.MockTransport(refuse))
    )
    with pytest.raises(ConnectionFailed) as caught:
        client.status(JOB_ID)
    err = caught.value
    assert isinstance(err, ApiError)
    assert err.code == "CONNECTION_FAILED"
    assert err.transient
    assert isinstance(err.__cause__, httpx.ConnectError)
    assert f"cannot reach {BASE_URL}/status/{JOB_ID}: connection refused" == err.message


def test_health_sends_no_key() -> None:
    api = FakeApi()
    with make_client(api) as client:
        assert client.health()["status"] == "ok"
    assert "Authorization" not in api.requests[0].headers


def test_wait_polls_until_terminal_and_reports_each_view() -> None:
    api = FakeApi(
        [
            job(status="pending", queue_position=2),
            job(status="processing", progress=10, stage="downloading"),
            job(status="processing", progress=60, stage="generating"),
            job(status="completed", progress=100, stage="done"),
        ]
    )
    sleeps: list[float] = []
    seen: list[float] = []
    with make_client(api, sleeps) as client:
        final = client.wait(JOB_ID, poll_interval=0.5, on_update=lambda v: seen.append(v.progress))
    assert final.status is JobStatus.COMPLETED
    assert seen == [0, 10, 60, 100]
    assert sleeps == [0.5, 0.5, 0.5]


def test_wait_returns_failed_job_without_raising() -> None:
    failed = job(status="failed", error={"code": "GPU_OUT_OF_MEMORY", "message": "CUDA OOM"})
    with make_client(FakeApi([failed])) as client:
        final = client.wait(JOB_ID)
    assert final.status is JobStatus.FAILED
    assert final.error is not None and final.error.message == "CUDA OOM"


def test_wait_times_out_with_injected_clock() -> None:
    now = [0.0]
    client = AvatarClient(
        BASE_URL,
        API_KEY,
        http=httpx.Client(transport=httpx.MockTransport(FakeApi([job()]))),
        sleep=lambda s: now.__setitem__(0, now[0] + s),
        clock=lambda: now[0],
    )
    with pytest.raises(TimeoutError, match="not finished after 3 s"):
        client.wait(JOB_ID, poll_interval=1.0, timeout=3)
    assert now[0] == 3.0  # polled at 0, 1, 2 and 3 s, then the next poll would be late


def test_wait_polls_through_transient_errors_then_gives_up() -> None:
    answers = iter(
        [
            envelope(503, "STORAGE_ERROR", "try again"),
            httpx.Response(200, json=job(status="completed", progress=100, stage="done")),
        ]
    )
    api = FakeApi()
    api.overrides["/status/"] = lambda _: next(answers)
    with make_client(api) as client:
        assert client.wait(JOB_ID).status is JobStatus.COMPLETED

    api.overrides["/status/"] = lambda _: envelope(503, "STORAGE_ERROR", "down")
    with make_client(api) as client, pytest.raises(ApiError, match="down"):
        client.wait(JOB_ID, max_transient_errors=2)


def test_wait_raises_permanent_errors_at_once() -> None:
    api = FakeApi()
    api.overrides["/status/"] = lambda _: envelope(404, "JOB_NOT_FOUND", "no such job")
    sleeps: list[float] = []
    with make_client(api, sleeps) as client, pytest.raises(ApiError, match="JOB_NOT_FOUND"):
        client.wait(JOB_ID)
    assert sleeps == []


def test_download_streams_to_dest_without_api_key(tmp_path: Path) -> None:
    api = FakeApi()
    dest = tmp_path / "out.mp4"
    with make_client(api) as client:
        assert client.download(SIGNED_URL, dest) == dest
    assert dest.read_bytes() == VIDEO
    assert not (tmp_path / "out.mp4.part").exists()
    request = api.requests[0]
    assert str(request.url) == SIGNED_URL
    assert "Authorization" not in request.headers


def test_download_resolves_relative_urls_against_base(tmp_path: Path) -> None:
    api = FakeApi()
    api.overrides["/blobs/"] = lambda _: httpx.Response(200, content=b"mp4")
    with make_client(api) as client:
        client.download("/blobs/videos/x.mp4?sig=1", tmp_path / "x.mp4")
    assert str(api.requests[0].url) == f"{BASE_URL}/blobs/videos/x.mp4?sig=1"
    assert (tmp_path / "x.mp4").read_bytes() == b"mp4"


def test_download_error_leaves_no_file(tmp_path: Path) -> None:
    api = FakeApi()
    api.overrides["/videos/"] = lambda _: envelope(403, "UNAUTHORIZED", "signature expired")
    dest = tmp_path / "out.mp4"
    with make_client(api) as client, pytest.raises(ApiError, match="signature expired"):
        client.download(SIGNED_URL, dest)
    assert list(tmp_path.iterdir()) == []


def test_download_broken_connection_removes_partial_file(tmp_path: Path) -> None:
    class Broken(httpx.SyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            yield b"half"
            raise httpx.ReadError("connection reset")

    client = AvatarClient(
        BASE_URL,
        API_KEY,
        http=httpx.Client(
            transport=httpx.MockTransport(lambda _: httpx.Response(200, stream=Broken()))
        ),
    )
    with pytest.raises(ConnectionFailed, match="connection reset"):
        client.download(SIGNED_URL, tmp_path / "out.mp4")
    assert list(tmp_path.iterdir()) == []


def test_owned_http_client_is_closed_on_exit() -> None:
    with AvatarClient(BASE_URL + "/", API_KEY) as client:
        assert client.base_url == BASE_URL
        http = client._http
    assert http.is_closed


def test_injected_http_client_stays_open() -> None:
    http = httpx.Client(transport=httpx.MockTransport(FakeApi()))
    with AvatarClient(BASE_URL, API_KEY, http=http):
        pass
    assert not http.is_closed


def test_sdk_and_client_commands_stay_server_free() -> None:
    code = (
        "import sys, avatar_client, avatar_client.cli; "
        "bad = {'edge_worker', 'gpu_agent', 'infinitetalk', 'dotenv', 'watchfiles'} & "
        "set(sys.modules); print(','.join(sorted(bad)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout) == (0, "\n")
