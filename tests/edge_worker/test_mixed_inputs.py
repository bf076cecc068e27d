"""Multipart `POST /generate` with an upload id in place of a file part, either way round:
the uploaded object is checked as on the JSON path and feeds that one job."""

from typing import Any

import pytest
from litestar.testing import TestClient

from tests.conftest import png_bytes, wav_bytes
from tests.edge_worker.conftest import AGENT_AUTH, AUTH, invalid_fields
from tests.edge_worker.test_uploads import grant, put

IMAGE = png_bytes(size=(40, 50))
AUDIO = wav_bytes(seconds=0.5)


def upload_one(client: TestClient, kind: str, data: bytes) -> str:
    content_type = "image/png" if kind == "image" else "audio/wav"
    grants = grant(client, **{kind: {"content_type": content_type, "size_bytes": len(data)}})
    put(client, grants[kind], data)
    upload_id: str = grants[kind]["upload_id"]
    return upload_id


def post_form(
    client: TestClient, files: dict[str, Any], data: dict[str, str], **headers: str
) -> Any:
    return client.post(
        "/generate", headers={**AUTH, **headers}, files=files, data={"prompt": "talk", **data}
    )


def inputs_of(client: TestClient, job_id: str) -> tuple[bytes, bytes]:
    claim = client.post(f"/agent/jobs/{job_id}/claim", json={"agent_id": "a"}, headers=AGENT_AUTH)
    assert claim.status_code == 200, claim.text
    urls = claim.json()["inputs"]
    return client.get(urls["image_url"]).content, client.get(urls["audio_url"]).content


@pytest.mark.parametrize("uploaded", ["image", "audio"])
def test_a_file_part_and_an_upload_id_make_one_job(client: TestClient, uploaded: str) -> None:
    inline = "audio" if uploaded == "image" else "image"
    data = {"image": IMAGE, "audio": AUDIO}
    upload_id = upload_one(client, uploaded, data[uploaded])
    files = {inline: (f"{inline}.bin", data[inline])}
    created = post_form(client, files, {f"{uploaded}_upload_id": upload_id})
    assert created.status_code == 200, created.text
    assert inputs_of(client, created.json()["job_id"]) == (IMAGE, AUDIO)
    again = post_form(client, files, {f"{uploaded}_upload_id": upload_id})
    assert (again.status_code, again.json()["error"]["code"]) == (409, "CONFLICT")
    assert again.json()["error"]["details"] == {"field": f"{uploaded}_upload_id"}


def test_both_upload_ids_in_a_form_work_like_json(client: TestClient) -> None:
    fields = {
        "image_upload_id": upload_one(client, "image", IMAGE),
        "audio_upload_id": upload_one(client, "audio", AUDIO),
        "prompt": "talk",
    }
    body = "".join(
        f'--b\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    )
    created = client.post(
        "/generate",
        headers={**AUTH, "Content-Type": "multipart/form-data; boundary=b"},
        content=f"{body}--b--\r\n".encode(),
    )
    assert created.status_code == 200, created.text
    assert inputs_of(client, created.json()["job_id"]) == (IMAGE, AUDIO)


def test_a_file_and_its_upload_id_together_are_refused(client: TestClient) -> None:
    upload_id = upload_one(client, "image", IMAGE)
    both = post_form(
        client,
        {"image": ("i.png", IMAGE), "audio": ("a.wav", AUDIO)},
        {"image_upload_id": upload_id},
    )
    assert invalid_fields(both) == ["image_upload_id"]
    neither = post_form(client, {"image": ("i.png", IMAGE)}, {})
    assert invalid_fields(neither) == ["audio"]
    assert "audio_upload_id" in neither.json()["error"]["message"]


def test_an_uploaded_part_is_checked_like_the_json_path(client: TestClient) -> None:
    wrong_media = upload_one(client, "audio", IMAGE)
    response = post_form(client, {"image": ("i.png", IMAGE)}, {"audio_upload_id": wrong_media})
    assert (response.status_code, response.json()["error"]["details"]) == (400, {"field": "audio"})
    grants = grant(client, audio={"content_type": "audio/wav", "size_bytes": len(AUDIO)})
    never_put = post_form(
        client, {"image": ("i.png", IMAGE)}, {"audio_upload_id": grants["audio"]["upload_id"]}
    )
    assert invalid_fields(never_put) == ["audio_upload_id"]
    forged = post_form(client, {"image": ("i.png", IMAGE)}, {"audio_upload_id": "up_forged.x"})
    assert invalid_fields(forged) == ["audio_upload_id"]
    too_long = post_form(client, {"image": ("i.png", IMAGE)}, {"audio_upload_id": "u" * 3000})
    assert invalid_fields(too_long) == ["audio_upload_id"]


def test_a_mixed_request_is_idempotent(client: TestClient) -> None:
    upload_id = upload_one(client, "audio", AUDIO)
    files = {"image": ("i.png", IMAGE)}
    first = post_form(client, files, {"audio_upload_id": upload_id}, **{"Idempotency-Key": "k1"})
    replay = post_form(client, files, {"audio_upload_id": upload_id}, **{"Idempotency-Key": "k1"})
    assert first.status_code == replay.status_code == 200
    assert first.json()["job_id"] == replay.json()["job_id"]
    other = post_form(
        client,
        {"image": ("i.png", png_bytes())},
        {"audio_upload_id": upload_id},
        **{"Idempotency-Key": "k1"},
    )
    assert (other.status_code, other.json()["error"]["code"]) == (422, "IDEMPOTENCY_KEY_REUSED")
