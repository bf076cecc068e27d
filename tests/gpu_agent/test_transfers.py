"""Streaming downloads with a size cap and streaming uploads with an explicit length."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gpu_agent import transfers
from gpu_agent.transfers import (
    InputChanged,
    PayloadTooLarge,
    TransferCancelled,
    TransferError,
    download,
    redact_url,
    upload,
)


def _client(handler: object) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(handler))  # type: ignore[arg-type]


def _chunks(total: int, size: int = 1000) -> Iterator[bytes]:
    for start in range(0, total, size):
        yield b"x" * min(size, total - start)


def test_download_writes_the_file_and_reports_progress(tmp_path: Path) -> None:
    data = b"abc" * 100_000
    seen: list[tuple[int, int | None]] = []
    with _client(lambda r: httpx.Response(200, content=data)) as client:
        size = download(
            client,
            "http://s/x?sig=1",
            tmp_path / "f",
            10**6,
            on_progress=lambda d, t: seen.append((d, t)),
        )
    assert size == len(data)
    assert (tmp_path / "f").read_bytes() == data
    assert seen[-1] == (len(data), len(data))
    assert len(seen) > 1  # chunked, not one read


def test_download_refuses_a_declared_size_over_the_cap(tmp_path: Path) -> None:
    with (
        _client(lambda r: httpx.Response(200, content=b"x" * 101)) as client,
        pytest.raises(PayloadTooLarge, match="101 bytes"),
    ):
        download(client, "http://s/x", tmp_path / "f", 100)
    assert not (tmp_path / "f").exists()


def test_download_stops_reading_an_undeclared_body_over_the_cap(tmp_path: Path) -> None:
    produced: list[int] = []

    def body() -> Iterator[bytes]:
        for chunk in _chunks(1_000_000):
            produced.append(len(chunk))
            yield chunk

    with (
        _client(lambda r: httpx.Response(200, content=body())) as client,
        pytest.raises(PayloadTooLarge),
    ):
        download(client, "http://s/x", tmp_path / "f", 5_000)
    assert not (tmp_path / "f").exists()
    assert sum(produced) < 1_000_000  # it did not read everything first


def test_download_http_error_keeps_the_status_and_hides_the_signature(tmp_path: Path) -> None:
    with (
        _client(lambda r: httpx.Response(403)) as client,
        pytest.raises(TransferError) as caught,
    ):
        download(client, "http://s/x?X-Amz-Signature=secret", tmp_path / "f", 100)
    assert caught.value.status_code == 403
    assert "secret" not in str(caught.value)
    assert not (tmp_path / "f").exists()


def test_download_network_error_removes_the_partial_file(tmp_path: Path) -> None:
    def body() -> Iterator[bytes]:
        yield b"partial"
        raise httpx.ReadError("reset")

    with (
        _client(lambda r: httpx.Response(200, content=body())) as client,
        pytest.raises(TransferError, match="ReadError"),
    ):
        download(client, "http://s/x", tmp_path / "f", 1000)
    assert not (tmp_path / "f").exists()


def test_download_can_be_cancelled(tmp_path: Path) -> None:
    with (
        _client(lambda r: httpx.Response(200, content=_chunks(10_000))) as client,
        pytest.raises(TransferCancelled),
    ):
        download(client, "http://s/x", tmp_path / "f", 10**6, cancelled=lambda: True)
    assert not (tmp_path / "f").exists()


def test_download_ignores_a_bad_content_length_header(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        response = httpx.Response(200, content=b"hello")
        response.headers["Content-Length"] = "five"
        return response

    with _client(handler) as client:
        assert download(client, "http://s/x", tmp_path / "f", 100) == 5


def test_upload_streams_the_file_with_length_and_type(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transfers, "CHUNK_SIZE", 1000)
    path = tmp_path / "v.mp4"
    path.write_bytes(bytes(range(256)) * 20)
    received: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        received.append(request)
        return httpx.Response(200)

    seen: list[tuple[int, int | None]] = []
    with _client(handler) as client:
        assert (
            upload(
                client,
                "http://s/v?sig=1",
                path,
                "video/mp4",
                on_progress=lambda s, t: seen.append((s, t)),
            )
            == 5120
        )
    request = received[0]
    assert request.method == "PUT"
    assert request.content == path.read_bytes()
    assert request.headers["content-length"] == "5120"
    assert request.headers["content-type"] == "video/mp4"
    assert "transfer-encoding" not in request.headers
    assert [s for s, _ in seen] == [1000, 2000, 3000, 4000, 5000, 5120]


@pytest.mark.parametrize("status", [403, 500])
def test_upload_http_error(tmp_path: Path, status: int) -> None:
    path = tmp_path / "v.mp4"
    path.write_bytes(b"v")
    with (
        _client(lambda r: httpx.Response(status)) as client,
        pytest.raises(TransferError) as caught,
    ):
        upload(client, "http://s/v?sig=secret", path, "video/mp4")
    assert caught.value.status_code == status
    assert "secret" not in str(caught.value)


def test_upload_network_error(tmp_path: Path) -> None:
    path = tmp_path / "v.mp4"
    path.write_bytes(b"v")

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with _client(refuse) as client, pytest.raises(TransferError, match="ConnectError"):
        upload(client, "http://s/v", path, "video/mp4")


def test_upload_can_be_cancelled(tmp_path: Path) -> None:
    path = tmp_path / "v.mp4"
    path.write_bytes(b"v" * 10)

    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        return httpx.Response(200)

    with _client(handler) as client, pytest.raises(TransferCancelled):
        upload(client, "http://s/v", path, "video/mp4", cancelled=lambda: True)


def test_redact_url_drops_query_and_fragment() -> None:
    assert (
        redact_url("https://a.r2.dev/videos/x.mp4?X-Amz-Signature=s#f")
        == "https://a.r2.dev/videos/x.mp4"
    )


@pytest.mark.parametrize(("status", "transient"), [(503, True), (429, True), (403, False)])
def test_http_errors_say_whether_a_retry_may_help(
    tmp_path: Path, status: int, transient: bool
) -> None:
    path = tmp_path / "v.mp4"
    path.write_bytes(b"v")
    with _client(lambda r: httpx.Response(status)) as client:
        with pytest.raises(TransferError) as down:
            download(client, "http://s/x", tmp_path / "f", 100)
        with pytest.raises(TransferError) as up:
            upload(client, "http://s/v", path, "video/mp4")
    assert down.value.transient is transient and up.value.transient is transient


def test_a_reset_is_transient_and_an_oversized_input_is_not(tmp_path: Path) -> None:
    def body() -> Iterator[bytes]:
        yield b"partial"
        raise httpx.ReadError("reset")

    with (
        _client(lambda r: httpx.Response(200, content=body())) as client,
        pytest.raises(TransferError) as reset,
    ):
        download(client, "http://s/x", tmp_path / "f", 1000)
    assert reset.value.transient is True
    with (
        _client(lambda r: httpx.Response(200, content=b"x" * 101)) as client,
        pytest.raises(PayloadTooLarge) as big,
    ):
        download(client, "http://s/x", tmp_path / "f", 100)
    assert big.value.transient is False


def test_download_takes_only_the_expected_etag(tmp_path: Path) -> None:
    answer = httpx.Response(200, content=b"abc", headers={"ETag": '"v1"'})
    with _client(lambda r: answer) as client:
        assert download(client, "http://s/x", tmp_path / "f", 100, etag='"v1"') == 3
    assert (tmp_path / "f").read_bytes() == b"abc"
    for headers in ({"ETag": '"v2"'}, {}):
        other = httpx.Response(200, content=b"xyz", headers=headers)
        with _client(lambda r, a=other: a) as client, pytest.raises(InputChanged, match='"v1"'):
            download(client, "http://s/x?sig=secret", tmp_path / "g", 100, etag='"v1"')
        assert not (tmp_path / "g").exists()
