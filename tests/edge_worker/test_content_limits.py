"""Limits by content: the edge reads an audio's length and an image's pixel count
from their headers, for files sent inline and for uploaded objects, before storing a job."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from contracts.media import MAX_AUDIO_SECONDS, MAX_IMAGE_PIXELS, sniff
from edge_worker.local import build_local, local_settings
from tests.conftest import blank_png_bytes, mp3_bytes, png_bytes, wav_bytes
from tests.edge_worker.conftest import AUTH, ENV, FakeClock, invalid_fields

EXAMPLES = Path(__file__).parents[2] / "examples"
LONG_SECONDS = 660
"""11 minutes: over the 10-minute default, in a fixture that takes about a second."""


@pytest.fixture(scope="module")
def long_mp3() -> bytes:
    """660 s in ~660 KB at 8 kbit/s, with LAME's Xing header."""
    return mp3_bytes(LONG_SECONDS)


@pytest.fixture(scope="module")
def long_mp3_without_header() -> bytes:
    """The same, without a Xing header: only walking its frames tells the length."""
    return mp3_bytes(LONG_SECONDS, xing=False)


@pytest.fixture(scope="module")
def huge_png() -> bytes:
    """A decompression attack: 8192x8192 RGBA, ~261 KB, 256 MiB once decoded."""
    return blank_png_bytes(8192, 8192)


def inline(client: TestClient, image: bytes, audio: bytes) -> Any:
    files = {"image": ("face.png", image), "audio": ("speech.bin", audio)}
    return client.post("/generate", headers=AUTH, files=files, data={"prompt": "talk"})


def uploaded(client: TestClient, image: bytes, audio: bytes) -> Any:
    audio_format = sniff(audio)
    assert audio_format is not None
    declared = {
        "image": {"content_type": "image/png", "size_bytes": len(image)},
        "audio": {"content_type": audio_format.content_type, "size_bytes": len(audio)},
    }
    grants = client.post("/uploads", json=declared, headers=AUTH).json()
    for name, body in (("image", image), ("audio", audio)):
        grant = grants[name]
        put = client.put(grant["url"], content=body, headers=grant["headers"])
        assert put.status_code == 200, put.text
    ids = {f"{name}_upload_id": grants[name]["upload_id"] for name in ("image", "audio")}
    return client.post("/generate", json={**ids, "prompt": "talk"}, headers=AUTH)


def refused(response: Any, code: str, details: dict[str, Any]) -> None:
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["details"] == pytest.approx(details, abs=0.5)


@pytest.mark.parametrize("send", [inline, uploaded])
@pytest.mark.parametrize("mp3", ["long_mp3", "long_mp3_without_header"])
def test_an_hour_of_mp3_in_a_small_file_is_refused(
    client: TestClient, send: Any, mp3: str, request: pytest.FixtureRequest
) -> None:
    audio = request.getfixturevalue(mp3)
    response = send(client, png_bytes(), audio)
    refused(
        response, "AUDIO_TOO_LONG", {"limit_seconds": MAX_AUDIO_SECONDS, "seconds": LONG_SECONDS}
    )
    assert "600 s" in response.json()["error"]["message"]


@pytest.mark.parametrize("send", [inline, uploaded])
def test_a_wav_over_the_limit_is_refused(client: TestClient, send: Any) -> None:
    response = send(client, png_bytes(), wav_bytes(601, rate=1000))
    refused(response, "AUDIO_TOO_LONG", {"limit_seconds": 600, "seconds": 601})


@pytest.mark.parametrize("send", [inline, uploaded])
def test_an_image_of_too_many_pixels_is_refused_from_its_header(
    client: TestClient, send: Any, huge_png: bytes
) -> None:
    response = send(client, huge_png, wav_bytes())
    refused(response, "IMAGE_TOO_LARGE", {"limit_pixels": MAX_IMAGE_PIXELS, "pixels": 8192 * 8192})


@pytest.mark.parametrize("send", [inline, uploaded])
def test_a_jpeg_whose_size_is_not_in_its_header_is_refused(client: TestClient, send: Any) -> None:
    scan_first = b"\xff\xd8\xff\xda\x00\x02" + bytes(200)
    assert invalid_fields(send(client, scan_first, wav_bytes())) == ["image"]


@pytest.mark.parametrize("send", [inline, uploaded])
def test_the_examples_and_a_long_enough_mp3_pass(client: TestClient, send: Any) -> None:
    portrait = (EXAMPLES / "portrait.png").read_bytes()
    speech = (EXAMPLES / "speech.wav").read_bytes()
    assert send(client, portrait, speech).status_code == 200
    assert send(client, portrait, mp3_bytes(590)).status_code == 200


@pytest.fixture
def strict_client(tmp_path: Path) -> Iterator[TestClient]:
    """An edge whose operator lowered both limits."""
    env = {**ENV, "MAX_AUDIO_SECONDS": "1.5", "MAX_IMAGE_PIXELS": str(96 * 120 - 1)}
    runtime = build_local(local_settings(env, "testserver.local", 80), tmp_path, FakeClock())
    with TestClient(runtime.app, base_url="http://testserver.local:80") as client:
        yield client
    runtime.close()


def test_the_limits_are_settings(strict_client: TestClient) -> None:
    refused(
        inline(strict_client, png_bytes((95, 120)), wav_bytes(2.0)),
        "AUDIO_TOO_LONG",
        {"limit_seconds": 1.5, "seconds": 2.0},
    )
    refused(
        inline(strict_client, png_bytes((96, 120)), wav_bytes(1.0)),
        "IMAGE_TOO_LARGE",
        {"limit_pixels": 96 * 120 - 1, "pixels": 96 * 120},
    )
    assert inline(strict_client, png_bytes((95, 120)), wav_bytes(1.5)).status_code == 200


def test_create_job_documents_both_codes(client: TestClient) -> None:
    document = client.get("/schema/openapi.json").text
    assert "AudioTooLongError" in document
    assert "ImageTooLargeError" in document
