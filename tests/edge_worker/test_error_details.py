"""Each error code's one `details` shape (docs/API.md#errors), whichever layer found the
problem: the multipart reader, a JSON body, Litestar's parameter validation, a size limit."""

import io
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from litestar.testing import TestClient

from contracts import ErrorCode
from contracts.errors import (
    ERROR_DETAILS,
    NoDetails,
    TooLargeDetails,
    details_of,
)
from edge_worker.local import build_local, local_settings
from tests.conftest import png_bytes, run, wav_bytes
from tests.edge_worker.conftest import AUTH, ENV, invalid_fields
from tests.edge_worker.test_uploads import grant, put

MiB = 1024 * 1024


def test_every_code_has_one_details_model() -> None:
    assert set(ERROR_DETAILS) == set(ErrorCode)
    assert details_of(ErrorCode.NOT_FOUND) == {}
    assert details_of(ErrorCode.PAYLOAD_TOO_LARGE, TooLargeDetails(limit_bytes=5)) == {
        "limit_bytes": 5
    }
    with pytest.raises(TypeError, match="IDEMPOTENCY_KEY_REUSED details are HeaderDetails"):
        details_of(ErrorCode.IDEMPOTENCY_KEY_REUSED, NoDetails())
    with pytest.raises(ValueError):  # INVALID_INPUT always names at least one error
        details_of(ErrorCode.INVALID_INPUT)


def test_multipart_json_and_query_problems_share_one_shape(client: TestClient) -> None:
    form = client.post(
        "/generate",
        headers=AUTH,
        files={"image": ("i.png", png_bytes()), "audio": ("a.wav", wav_bytes())},
        data={"prompt": "talk", "seed": "many"},
    )
    assert invalid_fields(form) == ["seed"]
    json_body = client.post(
        "/generate", headers=AUTH, json={"image_upload_id": "up_x", "prompt": 3, "seeed": 1}
    )
    assert invalid_fields(json_body) == ["audio_upload_id", "prompt", "seeed"]
    message = json_body.json()["error"]["message"]
    assert message == "audio_upload_id: Field required (and 2 more)"
    not_an_object = client.post("/generate", headers=AUTH, json=[1, 2])
    assert invalid_fields(not_an_object) == [None]
    query = client.get("/jobs", params={"limit": "many"}, headers=AUTH)
    assert invalid_fields(query) == ["limit"]
    not_json = client.post(
        "/uploads", headers={**AUTH, "Content-Type": "application/json"}, content=b"{nope"
    )
    assert invalid_fields(not_json) == [None]
    not_multipart = client.post(
        "/generate", headers={**AUTH, "Content-Type": "text/plain"}, content=b"hello"
    )
    assert invalid_fields(not_multipart) == [None]


@pytest.mark.parametrize(
    "body",
    [
        {"image": {"content_type": "image/png", "size_bytes": 10}, "subtitles": {}},
        {"image": {"content_type": "image/png", "size_bytes": 10, "name": "face.png"}},
    ],
)
def test_uploads_refuse_unknown_fields(client: TestClient, body: dict[str, Any]) -> None:
    response = client.post("/uploads", headers=AUTH, json=body)
    assert invalid_fields(response) in (["subtitles"], ["image.name"])


def test_unsupported_media_names_the_file(client: TestClient) -> None:
    declared = client.post(
        "/uploads", headers=AUTH, json={"audio": {"content_type": "audio/ogg", "size_bytes": 9}}
    )
    assert declared.status_code == 400
    assert declared.json()["error"]["details"] == {"field": "audio"}
    inline = client.post(
        "/generate",
        headers=AUTH,
        files={"image": ("i.png", wav_bytes()), "audio": ("a.wav", wav_bytes())},
        data={"prompt": "talk"},
    )
    assert (inline.status_code, inline.json()["error"]["details"]) == (400, {"field": "image"})


def too_large(response: Any) -> dict[str, Any]:
    error = response.json()["error"]
    assert (response.status_code, error["code"]) == (413, "PAYLOAD_TOO_LARGE"), response.text
    details: dict[str, Any] = error["details"]
    return details


def test_every_size_limit_reports_the_limit(client: TestClient) -> None:
    declared = client.post(
        "/uploads",
        headers=AUTH,
        json={"audio": {"content_type": "audio/wav", "size_bytes": 50 * MiB + 1}},
    )
    assert too_large(declared) == {"limit_bytes": 50 * MiB, "field": "audio"}
    long_prompt = client.post(
        "/generate",
        headers=AUTH,
        files={"image": ("i.png", png_bytes()), "audio": ("a.wav", wav_bytes())},
        data={"prompt": "x" * 9000},
    )
    assert invalid_fields(long_prompt) == ["prompt"]  # a field's length, not a size limit
    big_json = client.post(
        "/generate", headers={**AUTH, "Content-Type": "application/json"}, content=b" " * 70_000
    )
    assert too_large(big_json) == {"limit_bytes": 64 * 1024}
    big_uploads_body = client.post(
        "/uploads", headers={**AUTH, "Content-Type": "application/json"}, content=b" " * (2 * MiB)
    )
    assert too_large(big_uploads_body) == {"limit_bytes": MiB}


def test_an_uploaded_object_over_its_limit_names_the_file(tmp_path: Path) -> None:
    env = {**ENV, "MAX_IMAGE_BYTES": "2000"}
    runtime = build_local(local_settings(env, "testserver.local", 80), tmp_path / "d")
    with TestClient(runtime.app, base_url="http://testserver.local:80") as client:
        grants = grant(client)
        # Stored before the limit was lowered: an upload URL itself takes only its declared size.
        key = urlsplit(grants["image"]["url"]).path.removeprefix("/blobs/")
        run(runtime.blobs.put(key, io.BytesIO(png_bytes() + bytes(3000)), "image/png"))
        put(client, grants["audio"], wav_bytes())
        response = client.post(
            "/generate",
            headers=AUTH,
            json={
                "image_upload_id": grants["image"]["upload_id"],
                "audio_upload_id": grants["audio"]["upload_id"],
                "prompt": "talk",
            },
        )
    runtime.close()
    assert too_large(response) == {"limit_bytes": 2000, "field": "image"}
