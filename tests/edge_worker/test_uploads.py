"""Direct-to-storage uploads: /uploads grants, PUT through the signed URL, JSON /generate."""

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from litestar.testing import TestClient

from contracts.media import MediaKind
from edge_worker.domain import upload_tokens
from edge_worker.local import build_local, local_settings
from tests.conftest import png_bytes, run, wav_bytes
from tests.edge_worker.conftest import (
    AGENT_AUTH,
    AUTH,
    ENV,
    OTHER_AUTH,
    FakeClock,
    invalid_fields,
    submit,
)

MiB = 1024 * 1024


def grant(client: TestClient, auth: dict[str, str] = AUTH, **files: Any) -> dict[str, Any]:
    """Grants for `files`, by default for `png_bytes()` and `wav_bytes()`."""
    body = files or {
        "image": {"content_type": "image/png", "size_bytes": len(png_bytes())},
        "audio": {"content_type": "audio/wav", "size_bytes": len(wav_bytes())},
    }
    response = client.post("/uploads", json=body, headers=auth)
    assert response.status_code == 200, response.text
    return response.json()


def put(client: TestClient, upload: dict[str, Any], body: bytes) -> None:
    response = client.put(upload["url"], content=body, headers=upload["headers"])
    assert response.status_code == 200, response.text


def generate(client: TestClient, grants: dict[str, Any], **extra: Any) -> Any:
    body = {
        "image_upload_id": grants["image"]["upload_id"],
        "audio_upload_id": grants["audio"]["upload_id"],
        "prompt": "talk",
        "resolution": "480p",
        **extra,
    }
    return client.post("/generate", json=body, headers=AUTH)


def uploaded(client: TestClient, image: bytes | None = None, audio: bytes | None = None) -> dict:
    image = png_bytes() if image is None else image
    audio = wav_bytes() if audio is None else audio
    grants = grant(
        client,
        image={"content_type": "image/png", "size_bytes": len(image)},
        audio={"content_type": "audio/wav", "size_bytes": len(audio)},
    )
    put(client, grants["image"], image)
    put(client, grants["audio"], audio)
    return grants


def test_grant_describes_the_upload(client: TestClient) -> None:
    grants = grant(client)
    image = grants["image"]
    assert image["method"] == "PUT"
    assert image["headers"] == {"Content-Type": "image/png", "If-None-Match": "*"}
    assert image["max_bytes"] == 10 * MiB
    assert "image/jpeg" in image["accepted_content_types"]
    assert grants["audio"]["max_bytes"] == 50 * MiB
    only_audio = grant(client, audio={"content_type": "audio/mpeg", "size_bytes": 5})
    assert only_audio["image"] is None


def test_uploaded_files_become_a_job_the_agent_can_read(client: TestClient) -> None:
    grants = uploaded(client)
    created = generate(client, grants)
    assert created.status_code == 200, created.text
    job = created.json()
    assert (job["status"], job["resolution"]) == ("pending", "480p")
    claim = client.post(
        f"/agent/jobs/{job['job_id']}/claim", json={"agent_id": "a"}, headers=AGENT_AUTH
    ).json()
    inputs = claim["inputs"]
    for kind, data in (("image", png_bytes()), ("audio", wav_bytes())):
        got = client.get(inputs[f"{kind}_url"])
        assert got.content == data
        # The ETag /generate saw, which the object still has: the agent compares the two.
        assert got.headers.get_list("etag") == [inputs[f"{kind}_etag"]]
    inline = submit(client)
    inline_claim = client.post(
        f"/agent/jobs/{inline['job_id']}/claim", json={"agent_id": "a"}, headers=AGENT_AUTH
    ).json()
    # Inline files are stored by the edge under the job's own keys: no one else can write them.
    assert inline_claim["inputs"]["image_etag"] is inline_claim["inputs"]["audio_etag"] is None


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 400, "INVALID_INPUT"),
        ({"image": {"content_type": "image/gif", "size_bytes": 10}}, 400, "UNSUPPORTED_MEDIA"),
        (
            {"audio": {"content_type": "audio/wav", "size_bytes": 51 * MiB}},
            413,
            "PAYLOAD_TOO_LARGE",
        ),
        ({"image": {"content_type": "image/png", "size_bytes": 0}}, 400, "INVALID_INPUT"),
    ],
)
def test_bad_declarations_are_refused(
    client: TestClient, body: dict, status: int, code: str
) -> None:
    response = client.post("/uploads", json=body, headers=AUTH)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)


def test_uploads_need_a_key(client: TestClient) -> None:
    assert client.post("/uploads", json={}).status_code == 401
    # The key is checked before the body is read, as at /generate.
    malformed = client.post(
        "/uploads", content=b"{bad", headers={"content-type": "application/json"}
    )
    assert malformed.json()["error"]["code"] == "UNAUTHORIZED"


@pytest.mark.parametrize(
    ("image", "audio", "status", "code"),
    [
        (b"text pretending to be an image" * 3, None, 400, "UNSUPPORTED_MEDIA"),
        (None, wav_bytes()[:-50], 400, "INVALID_INPUT"),
        (None, png_bytes(), 400, "UNSUPPORTED_MEDIA"),
    ],
)
def test_uploaded_objects_are_judged_by_their_bytes(
    client: TestClient, image: bytes | None, audio: bytes | None, status: int, code: str
) -> None:
    response = generate(client, uploaded(client, image, audio))
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)


def test_json_generate_takes_a_quality(client: TestClient) -> None:
    fast = generate(client, uploaded(client), quality="fast")
    assert fast.status_code == 200, fast.text
    assert fast.json()["quality"] == "fast"
    assert generate(client, uploaded(client)).json()["quality"] == "standard"
    bad = generate(client, uploaded(client), quality="turbo")
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "INVALID_INPUT")
    assert [e["field"] for e in bad.json()["error"]["details"]["errors"]] == ["quality"]


def test_missing_upload_is_invalid_input(client: TestClient) -> None:
    grants = grant(client)
    put(client, grants["audio"], wav_bytes())
    response = generate(client, grants)
    assert response.status_code == 400
    assert "PUT the file" in response.json()["error"]["message"]


def test_an_object_over_the_limit_is_refused_at_generate(tmp_path: Path) -> None:
    """An upload link holds the body to the declared size, itself under the limit; the
    size is checked again at /generate, for an object stored before the limit was lowered."""
    env = {**ENV, "MAX_IMAGE_BYTES": str(2000)}
    runtime = build_local(local_settings(env, "testserver.local", 80), tmp_path / "d")
    with TestClient(runtime.app, base_url="http://testserver.local:80") as client:
        grants = grant(client)
        key = urlsplit(grants["image"]["url"]).path.removeprefix("/blobs/")
        run(runtime.blobs.put(key, io.BytesIO(png_bytes() + bytes(3000)), "image/png"))
        put(client, grants["audio"], wav_bytes())
        response = generate(client, grants)
    runtime.close()
    assert (response.status_code, response.json()["error"]["code"]) == (413, "PAYLOAD_TOO_LARGE")


def test_foreign_forged_and_stale_upload_ids(client: TestClient, clock: FakeClock) -> None:
    theirs = grant(client, auth=OTHER_AUTH)
    put(client, theirs["image"], png_bytes())
    put(client, theirs["audio"], wav_bytes())
    assert generate(client, theirs).status_code == 400
    mine = uploaded(client)
    upload_id = mine["image"]["upload_id"]
    flipped = "0" if upload_id[-1] != "0" else "1"
    forged = dict(mine, image={"upload_id": upload_id[:-1] + flipped})
    assert invalid_fields(generate(client, forged)) == ["image_upload_id"]
    swapped = {"image": mine["audio"], "audio": mine["image"]}
    assert generate(client, swapped).status_code == 400
    clock.advance(hours=25)
    stale = generate(client, mine)
    assert stale.status_code == 400
    assert "expired" in stale.json()["error"]["message"]


def test_an_upload_feeds_one_job_only(client: TestClient) -> None:
    grants = uploaded(client)
    assert generate(client, grants).status_code == 200
    again = generate(client, grants, prompt="another")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "CONFLICT")


def test_json_generate_honours_idempotency_keys(client: TestClient) -> None:
    grants = uploaded(client)
    body = {
        "image_upload_id": grants["image"]["upload_id"],
        "audio_upload_id": grants["audio"]["upload_id"],
        "prompt": "talk",
    }
    headers = {**AUTH, "Idempotency-Key": "json-1"}
    first = client.post("/generate", json=body, headers=headers).json()
    second = client.post("/generate", json=body, headers=headers).json()
    assert first["job_id"] == second["job_id"]
    faster = client.post("/generate", json={**body, "quality": "fast"}, headers=headers)
    assert (faster.status_code, faster.json()["error"]["code"]) == (422, "IDEMPOTENCY_KEY_REUSED")


@pytest.mark.parametrize(
    "body",
    [b"{", b'{"prompt": "x"}', b'{"image_upload_id":"a","audio_upload_id":"b","prompt":""}'],
)
def test_malformed_json_generate(client: TestClient, body: bytes) -> None:
    response = client.post(
        "/generate", content=body, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "INVALID_INPUT"


def test_oversized_json_generate(client: TestClient) -> None:
    response = client.post(
        "/generate",
        content=b"{" + b" " * 70_000 + b"}",
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert response.status_code == 413


@pytest.fixture
def capped(tmp_path: Path) -> Iterator[TestClient]:
    env = {**ENV, "MAX_INLINE_REQUEST_BYTES": str(MiB)}
    runtime = build_local(local_settings(env, "testserver.local", 80), tmp_path / "capped")
    with TestClient(runtime.app, base_url="http://testserver.local:80") as client:
        yield client
    runtime.close()


def test_inline_cap_points_large_requests_to_uploads(capped: TestClient) -> None:
    response = capped.post(
        "/generate",
        headers=AUTH,
        files={"image": ("i.png", png_bytes()), "audio": ("a.wav", wav_bytes(seconds=40))},
        data={"prompt": "x"},
    )
    assert response.status_code == 413
    assert "/uploads" in response.json()["error"]["message"]
    assert response.json()["error"]["details"] == {"limit_bytes": MiB}
    assert capped.get("/health").json()["limits"]["max_request_bytes"] == MiB
    small = capped.post(
        "/generate",
        headers=AUTH,
        files={"image": ("i.png", png_bytes()), "audio": ("a.wav", wav_bytes())},
        data={"prompt": "x"},
    )
    assert small.status_code == 200


def test_upload_tickets_round_trip_and_refuse_garbage() -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 1, 1, tzinfo=UTC)
    ticket = upload_tokens.UploadTicket(
        "o", MediaKind.AUDIO, "inputs/uploads/x/audio.wav", 9, now + timedelta(hours=1)
    )
    token = upload_tokens.issue(ticket, "secret")
    assert upload_tokens.redeem(token, "secret", "o", MediaKind.AUDIO, now) == ticket
    for bad in ("nope", "up_!!!.sig", "up_e30.sig", token.replace("up_", "up_x")):
        with pytest.raises(Exception, match="not an upload of yours"):
            upload_tokens.redeem(bad, "secret", "o", MediaKind.AUDIO, now)
    with pytest.raises(Exception, match="not an upload of yours"):
        upload_tokens.redeem(token, "other-secret", "o", MediaKind.AUDIO, now)


def test_inline_cap_is_enforced_while_streaming_without_length(capped: TestClient) -> None:
    boundary = "streamed"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="audio"; filename="a.wav"\r\n'
        "Content-Type: audio/wav\r\n\r\n"
    ).encode()

    def body() -> Iterator[bytes]:
        yield head + wav_bytes(seconds=1)
        for _ in range(40):
            yield bytes(64 * 1024)

    response = capped.post(
        "/generate",
        content=body(),
        headers={**AUTH, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 413
    assert "/uploads" in response.json()["error"]["message"]


def test_an_upload_key_tells_when_its_ticket_expires() -> None:
    from datetime import UTC, datetime

    expires_at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    key = upload_tokens.new_key(MediaKind.IMAGE, "image/png", expires_at)
    assert upload_tokens.expiry_of(key) == expires_at
    for other in (
        "inputs/uploads/abc/image.png",
        "inputs/j/image.png",
        "inputs/uploads/999999999999-x/a.wav",
    ):
        assert upload_tokens.expiry_of(other) is None
