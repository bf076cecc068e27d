"""The admin API through the real local app: keys created there are API keys at once."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from edge_worker.local import build_local, local_settings
from tests.conftest import png_bytes, wav_bytes
from tests.edge_worker.conftest import AUTH, ENV, FakeClock

ADMIN_TOKEN = "test-admin-token-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def admin_client(tmp_path: Path, clock: FakeClock) -> Iterator[TestClient]:
    settings = local_settings({**ENV, "ADMIN_TOKEN": ADMIN_TOKEN}, "testserver.local", 80)
    runtime = build_local(settings, tmp_path / "data", clock)
    with TestClient(runtime.app, base_url="http://testserver.local:80") as test_client:
        yield test_client
    runtime.close()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def generate(client: TestClient, key: str) -> str:
    files = {"image": ("face.png", png_bytes()), "audio": ("speech.wav", wav_bytes())}
    data = {"prompt": "A person talking", "resolution": "480p"}
    response = client.post("/generate", headers=bearer(key), files=files, data=data)
    assert response.status_code == 200, response.text
    job_id: str = response.json()["job_id"]
    return job_id


def job_ids(client: TestClient, key: str) -> list[str]:
    response = client.get("/jobs", headers=bearer(key))
    assert response.status_code == 200, response.text
    return [job["job_id"] for job in response.json()["jobs"]]


def refused(client: TestClient, key: str, message: str) -> None:
    response = client.get("/jobs", headers=bearer(key))
    assert response.status_code == 401
    assert response.json()["error"] == {"code": "UNAUTHORIZED", "message": message, "details": {}}


def test_a_key_lives_through_create_use_rotate_and_revoke(admin_client: TestClient) -> None:
    created = admin_client.post(
        "/admin/keys", headers=ADMIN, json={"name": "acme", "rate_limit_per_minute": 30}
    )
    assert created.status_code == 201, created.text
    record = created.json()
    key = record.pop("key")
    assert key.startswith("sk_live_")

    job_id = generate(admin_client, key)
    assert job_ids(admin_client, key) == [job_id]
    assert job_ids(admin_client, AUTH["Authorization"].split()[1]) == [], "tenants stay apart"

    listed = admin_client.get("/admin/keys", headers=ADMIN)
    assert listed.status_code == 200
    (shown,) = listed.json()["keys"]
    assert key not in listed.text
    assert shown["prefix"] == key[:12] and shown["rate_limit_per_minute"] == 30
    assert shown["last_used_at"] is not None

    rotated = admin_client.post(f"/admin/keys/{record['id']}/rotate", headers=ADMIN)
    assert rotated.status_code == 200, rotated.text
    new_key = rotated.json()["key"]
    assert rotated.json()["owner"] == record["owner"]
    refused(admin_client, key, "invalid API key")
    assert job_ids(admin_client, new_key) == [job_id], "the tenant's jobs stay visible"

    revoked = admin_client.delete(f"/admin/keys/{record['id']}", headers=ADMIN)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    refused(admin_client, new_key, "API key revoked")
    again = admin_client.post(f"/admin/keys/{record['id']}/rotate", headers=ADMIN)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "CONFLICT")


def test_an_expired_key_is_refused(admin_client: TestClient, clock: FakeClock) -> None:
    created = admin_client.post(
        "/admin/keys", headers=ADMIN, json={"name": "trial", "expires_in_days": 2}
    ).json()
    assert job_ids(admin_client, created["key"]) == []
    clock.advance(days=2)
    refused(admin_client, created["key"], "API key expired")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/admin/keys", {"name": "x"}),
        ("GET", "/admin/keys", None),
        ("DELETE", "/admin/keys/key_x", None),
        ("POST", "/admin/keys/key_x/rotate", None),
    ],
)
def test_the_admin_api_takes_only_the_admin_token(
    admin_client: TestClient, client: TestClient, method: str, path: str, body: object
) -> None:
    for headers in ({}, AUTH, bearer("test-admin-token-0123456780")):
        response = admin_client.request(method, path, headers=headers, json=body)
        assert (response.status_code, response.json()["error"]["code"]) == (401, "UNAUTHORIZED")
    hidden = client.request(method, path, headers=ADMIN, json=body)
    assert (hidden.status_code, hidden.json()["error"]["code"]) == (404, "NOT_FOUND")


def test_bad_requests_get_the_error_envelope(admin_client: TestClient) -> None:
    for body in ({}, {"name": "x", "expires_in_days": 0}, {"name": "x", "extra": 1}):
        response = admin_client.post("/admin/keys", headers=ADMIN, json=body)
        assert (response.status_code, response.json()["error"]["code"]) == (400, "INVALID_INPUT")
    missing = admin_client.delete("/admin/keys/key_missing", headers=ADMIN)
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "NOT_FOUND")


def test_the_admin_api_is_not_in_the_public_document(admin_client: TestClient) -> None:
    paths = admin_client.get("/schema/openapi.json").json()["paths"]
    assert not [path for path in paths if path.startswith("/admin")]
