"""Owner ids are keyed by API_KEY_PEPPER and appear neither in upload ids nor in logs."""

import base64
import logging
from pathlib import Path

import pytest
from litestar.testing import TestClient

from edge_worker.auth import owner_id
from edge_worker.local import build_local, local_settings
from tests.edge_worker.conftest import API_KEY, AUTH, ENV, OTHER_AUTH, PEPPER, FakeClock, submit
from tests.edge_worker.test_uploads import grant

OWNER = owner_id(API_KEY, PEPPER)


def test_an_upload_id_does_not_show_its_owner(client: TestClient) -> None:
    upload_id = grant(client)["image"]["upload_id"]
    body = upload_id.removeprefix("up_").partition(".")[0]
    payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
    assert OWNER not in upload_id and OWNER not in payload
    refused = client.post(
        "/generate",
        headers=OTHER_AUTH,
        json={"image_upload_id": upload_id, "audio_upload_id": upload_id, "prompt": "talk"},
    )
    assert refused.status_code == 400, "another key's signature never matches"


def test_no_log_line_names_the_owner(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        job_id = submit(client)["job_id"]
        assert client.get(f"/status/{job_id}", headers=AUTH).status_code == 200
    assert any(getattr(record, "job_id", None) == job_id for record in caplog.records)
    for record in caplog.records:
        assert OWNER not in str(record.__dict__)


def test_a_new_pepper_gives_every_key_a_new_owner(tmp_path: Path, clock: FakeClock) -> None:
    """Rotating the pepper orphans existing jobs: SECURITY.md says so, this shows it."""
    data_dir = tmp_path / "data"
    first = build_local(local_settings(ENV, "testserver.local", 80), data_dir, clock)
    with TestClient(first.app, base_url="http://testserver.local:80") as client:
        job_id = submit(client)["job_id"]
        assert client.get(f"/status/{job_id}", headers=AUTH).status_code == 200
    first.close()

    rotated = {**ENV, "API_KEY_PEPPER": "a-new-pepper-0123456789"}
    second = build_local(local_settings(rotated, "testserver.local", 80), data_dir, clock)
    with TestClient(second.app, base_url="http://testserver.local:80") as client:
        assert client.get(f"/status/{job_id}", headers=AUTH).status_code == 404
        assert client.get("/jobs", headers=AUTH).json()["jobs"] == []
    second.close()
