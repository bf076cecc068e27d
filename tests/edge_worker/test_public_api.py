"""The client-facing API over HTTP: auth, validation by content, limits, envelopes, views."""

import json
import logging

import pytest
from litestar.testing import TestClient

from tests.conftest import png_bytes, wav_bytes
from tests.edge_worker.conftest import API_KEY, AUTH, OTHER_AUTH, invalid_fields, submit

MiB = 1024 * 1024


def error_of(response) -> str:  # type: ignore[no-untyped-def]
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]["code"]


def test_generate_returns_a_pending_job_with_queue_position(client: TestClient) -> None:
    first = submit(client)
    second = submit(client)
    assert first["status"] == "pending"
    assert first["stage"] == "queued"
    assert first["progress"] == 0
    assert first["attempts"] == 0
    assert first["resolution"] == "480p"
    assert first["created_at"].endswith("Z")
    assert (first["queue_position"], second["queue_position"]) == (0, 1)
    status = client.get(f"/status/{second['job_id']}", headers=AUTH).json()
    assert status["job_id"] == second["job_id"]
    assert status["queue_position"] == 1


def test_generate_accepts_jpeg_and_mp3_by_content(client: TestClient) -> None:
    import io

    from PIL import Image

    jpeg = io.BytesIO()
    Image.new("RGB", (80, 80)).save(jpeg, "JPEG")
    mp3_frame = bytes([0xFF, 0xFB, 0x90, 0x64]) + bytes(413)
    job = submit(client, image=("x.bin", jpeg.getvalue()), audio=("x.bin", mp3_frame * 4))
    assert job["status"] == "pending"


@pytest.mark.parametrize(
    ("files", "data", "code", "status"),
    [
        (
            {"image": ("face.png", b"just some text, not a picture" * 4)},
            {},
            "UNSUPPORTED_MEDIA",
            400,
        ),
        ({"audio": ("speech.wav", png_bytes())}, {}, "UNSUPPORTED_MEDIA", 400),
        ({"image": ("face.png", wav_bytes())}, {}, "UNSUPPORTED_MEDIA", 400),
        ({"audio": ("speech.wav", wav_bytes()[:-100])}, {}, "INVALID_INPUT", 400),
        ({"audio": ("speech.wav", b"RIFF")}, {}, "UNSUPPORTED_MEDIA", 400),
        ({"image": ("face.png", b"")}, {}, "INVALID_INPUT", 400),
        ({}, {"prompt": ""}, "INVALID_INPUT", 400),
        ({}, {"prompt": "x" * 2001}, "INVALID_INPUT", 400),
        ({}, {"resolution": "1080p"}, "INVALID_INPUT", 400),
        ({}, {"quality": "turbo"}, "INVALID_INPUT", 400),
        ({}, {"seed": "abc"}, "INVALID_INPUT", 400),
        ({}, {"seed": "-1"}, "INVALID_INPUT", 400),
        ({}, {"colour": "blue"}, "INVALID_INPUT", 400),
        ({}, {"prompt": "x" * 9000}, "INVALID_INPUT", 400),
    ],
)
def test_bad_inputs_get_clear_codes(
    client: TestClient, files: dict, data: dict, code: str, status: int
) -> None:
    all_files = {"image": ("face.png", png_bytes()), "audio": ("speech.wav", wav_bytes())}
    all_files.update(files)
    all_data = {"prompt": "talk"}
    all_data.update(data)
    response = client.post("/generate", headers=AUTH, files=all_files, data=all_data)
    assert response.status_code == status, response.text
    assert error_of(response) == code


def test_quality_is_standard_unless_fast_is_asked_for(client: TestClient) -> None:
    standard = submit(client)
    fast = submit(client, quality="fast")
    assert (standard["quality"], fast["quality"]) == ("standard", "fast")
    status = client.get(f"/status/{fast['job_id']}", headers=AUTH).json()
    assert status["quality"] == "fast"
    listed = client.get("/jobs", headers=AUTH).json()["jobs"]
    assert [j["quality"] for j in listed] == ["fast", "standard"]


def test_a_bad_quality_names_the_field_and_the_choices(client: TestClient) -> None:
    response = client.post(
        "/generate",
        headers=AUTH,
        files={"image": ("face.png", png_bytes()), "audio": ("speech.wav", wav_bytes())},
        data={"prompt": "talk", "quality": "turbo"},
    )
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "INVALID_INPUT",
        "message": "quality must be one of standard, fast",
        "details": {
            "errors": [{"field": "quality", "message": "quality must be one of standard, fast"}]
        },
    }


@pytest.mark.parametrize("missing", ["image", "audio"])
def test_missing_file_is_invalid_input(client: TestClient, missing: str) -> None:
    files = {"image": ("face.png", png_bytes()), "audio": ("speech.wav", wav_bytes())}
    del files[missing]
    response = client.post("/generate", headers=AUTH, files=files, data={"prompt": "x"})
    assert invalid_fields(response) == [missing]


def test_oversized_image_is_refused_while_streaming(client: TestClient, runtime) -> None:  # type: ignore[no-untyped-def]
    big = png_bytes() + bytes(11 * MiB)
    response = client.post(
        "/generate",
        headers=AUTH,
        files={"image": ("face.png", big), "audio": ("speech.wav", wav_bytes())},
        data={"prompt": "x"},
    )
    assert response.status_code == 413
    assert error_of(response) == "PAYLOAD_TOO_LARGE"
    assert response.json()["error"]["details"]["field"] == "image"
    assert not list((runtime.blobs.root).rglob("*.*"))


def test_announced_oversized_body_is_refused_before_reading(client: TestClient) -> None:
    response = client.post(
        "/generate",
        headers={**AUTH, "Content-Type": "multipart/form-data; boundary=x"},
        content=b"--x--",
        extensions={},
    )
    assert response.status_code == 400
    headers = {
        **AUTH,
        "Content-Type": "multipart/form-data; boundary=x",
        "Content-Length": str(100 * MiB),
    }
    response = client.request("POST", "/generate", headers=headers, content=b"")
    assert response.status_code in (400, 413)


def test_json_body_is_not_a_form(client: TestClient) -> None:
    response = client.post("/generate", headers=AUTH, json={"prompt": "x"})
    assert response.status_code == 400
    assert error_of(response) == "INVALID_INPUT"


def test_duplicate_field_is_refused(client: TestClient) -> None:
    boundary = "b0undary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="prompt"\r\n\r\na\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nb\r\n'
        f"--{boundary}--\r\n"
    ).encode()
    response = client.post(
        "/generate",
        headers={**AUTH, "Content-Type": f"multipart/form-data; boundary={boundary}"},
        content=body,
    )
    assert response.status_code == 400
    assert "sent twice" in response.json()["error"]["message"]


def test_malformed_multipart_is_invalid_input(client: TestClient) -> None:
    response = client.post(
        "/generate",
        headers={**AUTH, "Content-Type": "multipart/form-data; boundary=zz"},
        content=b'--zz\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nunterminated',
    )
    assert response.status_code == 400
    assert "malformed multipart" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong-key-0000000000"}, {"Authorization": "Basic x"}]
)
def test_no_or_wrong_key_is_401_everywhere(client: TestClient, headers: dict) -> None:
    for method, path in [
        ("POST", "/generate"),
        ("GET", "/status/abc"),
        ("GET", "/result/abc"),
        ("GET", "/jobs"),
    ]:
        response = client.request(method, path, headers=headers)
        assert response.status_code == 401, (method, path)
        assert error_of(response) == "UNAUTHORIZED"
        assert response.headers["www-authenticate"] == "Bearer"


def test_another_keys_job_is_not_found(client: TestClient) -> None:
    job = submit(client)
    for path in (f"/status/{job['job_id']}", f"/result/{job['job_id']}"):
        response = client.get(path, headers=OTHER_AUTH)
        assert response.status_code == 404
        assert error_of(response) == "JOB_NOT_FOUND"


def test_unknown_job_and_unready_result(client: TestClient) -> None:
    response = client.get("/status/00000000-0000-4000-8000-000000000000", headers=AUTH)
    assert (response.status_code, error_of(response)) == (404, "JOB_NOT_FOUND")
    job = submit(client)
    response = client.get(f"/result/{job['job_id']}", headers=AUTH)
    assert (response.status_code, error_of(response)) == (404, "RESULT_NOT_READY")
    assert response.json()["error"]["details"] == {"status": "pending"}


def test_unknown_route_and_wrong_method_use_the_envelope(client: TestClient) -> None:
    response = client.get("/nope")
    assert (response.status_code, error_of(response)) == (404, "NOT_FOUND")
    response = client.delete("/health")
    assert (response.status_code, error_of(response)) == (405, "METHOD_NOT_ALLOWED")


def test_every_response_has_a_request_id(client: TestClient) -> None:
    for response in (
        client.get("/health"),
        client.get("/nope"),
        client.get("/status/x"),
        client.get("/status/x", headers=AUTH),
    ):
        assert len(response.headers["x-request-id"]) >= 8
    echoed = client.get("/health", headers={"X-Request-ID": "client-chosen-id-1"})
    assert echoed.headers["x-request-id"] == "client-chosen-id-1"
    hostile = client.get("/health", headers={"X-Request-ID": "bad id\n"})
    assert hostile.headers["x-request-id"] != "bad id\n"


def test_list_jobs_newest_first_with_cursor(client: TestClient) -> None:
    ids = [submit(client)["job_id"] for _ in range(3)]
    page = client.get("/jobs", params={"limit": 2}, headers=AUTH).json()
    assert [j["job_id"] for j in page["jobs"]] == ids[::-1][:2]
    rest = client.get("/jobs", params={"cursor": page["next_cursor"]}, headers=AUTH).json()
    assert [j["job_id"] for j in rest["jobs"]] == ids[:1]
    assert rest["next_cursor"] is None
    assert client.get("/jobs", headers=OTHER_AUTH).json()["jobs"] == []
    bad = client.get("/jobs", params={"cursor": "!!!"}, headers=AUTH)
    assert (bad.status_code, error_of(bad)) == (400, "INVALID_INPUT")
    bad_limit = client.get("/jobs", params={"limit": 1000}, headers=AUTH)
    assert (bad_limit.status_code, error_of(bad_limit)) == (400, "INVALID_INPUT")


def test_list_jobs_filters_on_status(client: TestClient) -> None:
    kept, cancelled = submit(client)["job_id"], submit(client)["job_id"]
    assert client.delete(f"/jobs/{cancelled}", headers=AUTH).status_code == 200

    def listed(status: str) -> list[str]:
        response = client.get("/jobs", params={"status": status}, headers=AUTH)
        assert response.status_code == 200, response.text
        return [job["job_id"] for job in response.json()["jobs"]]

    assert listed("pending") == [kept]
    assert listed("cancelled") == [cancelled]
    assert listed("pending,processing") == [kept]
    assert listed("pending, cancelled") == [cancelled, kept]
    assert listed("completed,failed") == []
    unknown = client.get("/jobs", params={"status": "pending,done"}, headers=AUTH)
    assert (unknown.status_code, error_of(unknown)) == (400, "INVALID_INPUT")
    assert "pending, processing, completed" in unknown.json()["error"]["message"]


def test_health_and_openapi_need_no_key(client: TestClient) -> None:
    health = client.get("/health").json()
    assert health["status"] == "ok"
    assert health["checks"] == {"job_store": "ok"}
    limits = health["limits"]
    assert (limits["max_image_bytes"], limits["max_audio_bytes"]) == (10 * MiB, 50 * MiB)
    assert (limits["max_audio_seconds"], limits["max_image_pixels"]) == (600, 16_777_216)
    schema = client.get("/schema/openapi.json").json()
    assert {"/generate", "/status/{job_id}", "/result/{job_id}", "/health"} <= set(schema["paths"])
    assert "`quality`" in schema["paths"]["/generate"]["post"]["description"]
    components = schema["components"]["schemas"]
    quality = components["JobView"]["properties"]["quality"]
    assert quality == {"$ref": "#/components/schemas/Quality"}
    assert (components["Quality"]["enum"], components["Quality"]["default"]) == (
        ["standard", "fast"],
        "standard",
    )


def test_health_advertises_the_largest_inline_request(client: TestClient) -> None:
    """Both files at their limits and room for the rest, where the runtime has no cap."""
    assert client.get("/health").json()["limits"]["max_request_bytes"] == 61 * MiB


def test_health_reports_a_broken_store(client: TestClient, runtime) -> None:  # type: ignore[no-untyped-def]
    runtime.database.close()
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["checks"]["job_store"] == "error"


def test_unexpected_errors_are_generic_500(client: TestClient, runtime, caplog) -> None:  # type: ignore[no-untyped-def]
    runtime.database.close()
    with caplog.at_level(logging.ERROR):
        response = client.get("/status/abc", headers=AUTH)
    assert response.status_code == 500
    assert response.json()["error"] == {
        "code": "INTERNAL_ERROR",
        "message": "internal error",
        "details": {},
    }


def test_logs_never_contain_keys(client: TestClient, caplog) -> None:  # type: ignore[no-untyped-def]
    from contracts.logs import JsonFormatter

    with caplog.at_level(logging.DEBUG):
        submit(client)
        client.get("/status/x", headers={"Authorization": "Bearer wrong-key-0000000000"})
    formatter = JsonFormatter()
    lines = [formatter.format(record) for record in caplog.records]
    assert lines
    for line in lines:
        json.loads(line)
        assert API_KEY not in line
        assert "wrong-key-0000000000" not in line
