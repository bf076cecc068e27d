"""`GET /admin/usage` through the real local app: every tenant's buckets, named by key."""

from typing import Any

from litestar.testing import TestClient

from tests.edge_worker.conftest import AUTH, invalid_fields
from tests.edge_worker.test_admin_api import (  # noqa: F401 (fixture)
    ADMIN,
    admin_client,
    generate,
)
from tests.edge_worker.test_usage import complete


def admin_usage(client: TestClient, **query: str) -> dict[str, Any]:
    response = client.get("/admin/usage", headers=ADMIN, params=query)
    assert response.status_code == 200, response.text
    return response.json()


def test_usage_across_keys_names_each_stored_key(admin_client: TestClient) -> None:  # noqa: F811
    created = admin_client.post("/admin/keys", headers=ADMIN, json={"name": "acme"}).json()
    complete(admin_client, generate(admin_client, created["key"]), 2.0, 7.5)
    generate(admin_client, created["key"])
    generate(admin_client, AUTH["Authorization"].removeprefix("Bearer "))

    buckets = admin_usage(admin_client)["buckets"]
    named = {(b["key_id"], b["key_name"]): b for b in buckets}
    assert set(named) == {(created["id"], "acme"), (None, None)}  # None: a key of API_KEYS
    acme = named[created["id"], "acme"]
    assert acme["owner"] == created["owner"]
    assert (acme["jobs_created"], acme["jobs_completed"], acme["gpu_seconds"]) == (2, 1, 7.5)
    assert acme["video_seconds"] == 2.0 and acme["audio_seconds"] == 1.0
    assert named[None, None]["jobs_created"] == 1

    only = admin_usage(admin_client, key=created["id"])["buckets"]
    assert only == [acme]


def test_admin_usage_refuses_unknown_keys_bad_dates_and_clients(
    admin_client: TestClient,  # noqa: F811
) -> None:
    unknown = admin_client.get("/admin/usage", headers=ADMIN, params={"key": "nope"})
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "NOT_FOUND")
    bad = admin_client.get("/admin/usage", headers=ADMIN, params={"to": "2026-02-30"})
    assert invalid_fields(bad) == ["to"]
    assert admin_client.get("/admin/usage", headers=AUTH).status_code == 401
