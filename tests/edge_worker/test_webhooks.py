"""Webhooks through the local runtime (Litestar's test client) to a real HTTP receiver in
this process: the /generate fields, events from every path that changes a job, signatures
checked by `standardwebhooks`, retries with one webhook-id, the log, redelivery, rotation."""

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient

from avatar_client import AsyncAvatarClient, AvatarClient, errors
from contracts.webhooks import WebhookEventType
from edge_worker.local import LocalRuntime, build_local, local_settings
from tests.conftest import png_bytes, wav_bytes
from tests.edge_worker.conftest import (
    AGENT_AUTH,
    API_KEY,
    AUTH,
    ENV,
    OTHER_AUTH,
    FakeClock,
    invalid_fields,
)
from tests.edge_worker.test_agent_api import RESULT, VIDEO, claim, post, upload
from tests.webhook_receiver import Receiver, webhook_receiver

# Tiny retry delays: three attempts, then the edge gives up (no minimum span).
HOOK_ENV = {
    **ENV,
    "WEBHOOK_ALLOW_PRIVATE": "1",
    "WEBHOOK_RETRY_BASE_SECONDS": "0.05",
    "WEBHOOK_RETRY_CAP_SECONDS": "0.1",
    "WEBHOOK_MIN_ATTEMPTS": "3",
    "WEBHOOK_RETRY_SPAN_SECONDS": "0",
    "WEBHOOK_POLL_SECONDS": "0.05",
    "MAX_ATTEMPTS": "1",
}
ALL_EVENTS = ["job.processing", "job.progress", "job.completed", "job.failed", "job.cancelled"]


@pytest.fixture
def hooks(tmp_path: Path, clock: FakeClock) -> Iterator[tuple[LocalRuntime, TestClient]]:
    runtime = build_local(local_settings(HOOK_ENV, "testserver.local", 80), tmp_path / "d", clock)
    with TestClient(runtime.app, base_url="http://testserver.local:80") as client:
        yield runtime, client
    runtime.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as started:
        yield started


def create(client: TestClient, fields: dict[str, str | list[str]]) -> Any:
    """A multipart /generate; a list value is a field sent once per item."""
    files = {"image": ("face.png", png_bytes()), "audio": ("speech.wav", wav_bytes())}
    return client.post("/generate", headers=AUTH, files=files, data={"prompt": "Hi", **fields})


def hooked_job(client: TestClient, url: str, events: list[str] | None = None) -> str:
    fields: dict[str, str | list[str]] = {"webhook_url": url}
    if events:
        fields["webhook_events"] = events
    response = create(client, fields)
    assert response.status_code == 200, response.text
    return str(response.json()["job_id"])


def secret(client: TestClient) -> str:
    return str(client.get("/webhooks/secret", headers=AUTH).json()["secret"])


def deliveries(client: TestClient, job_id: str) -> dict[str, Any]:
    response = client.get(f"/jobs/{job_id}/webhooks", headers=AUTH)
    assert response.status_code == 200, response.text
    return dict(response.json())


def finish(client: TestClient, job_id: str) -> None:
    grant = claim(client, job_id)
    upload(client, grant)
    body = {"claim_token": grant["claim_token"], "result": {**RESULT, "size_bytes": len(VIDEO)}}
    assert post(client, job_id, "complete", body).status_code == 200


def test_generate_records_the_webhook_repeated_or_comma_separated(
    hooks: tuple[LocalRuntime, TestClient], receiver: Receiver
) -> None:
    _, client = hooks
    repeated = hooked_job(client, receiver.url, ["job.progress", "job.completed"])
    comma = hooked_job(client, receiver.url, ["job.progress,job.completed"])
    default = hooked_job(client, receiver.url)
    for job_id in (repeated, comma):
        found = deliveries(client, job_id)
        assert found["webhook_events"] == ["job.completed", "job.progress"]
        assert (found["webhook_url"], found["events"]) == (receiver.url, [])
    terminal = ["job.cancelled", "job.completed", "job.failed"]
    assert deliveries(client, default)["webhook_events"] == terminal
    plain = create(client, {}).json()["job_id"]
    assert deliveries(client, plain) == {
        "job_id": plain,
        "webhook_url": None,
        "webhook_events": [],
        "events": [],
    }


BAD_FIELDS: list[tuple[dict[str, str | list[str]], str]] = [
    ({"webhook_url": "ftp://example.com/hook"}, "webhook_url"),
    ({"webhook_url": "https://"}, "webhook_url"),
    ({"webhook_url": "https://example.com:99999/"}, "webhook_url"),
    ({"webhook_url": "https://exa mple.com/"}, "webhook_url"),
    ({"webhook_url": "https://example.com/", "webhook_events": "job.done"}, "webhook_events"),
    ({"webhook_url": "https://example.com/", "webhook_events": " , "}, "webhook_events"),
    ({"webhook_events": "job.completed"}, "webhook_events"),
    # The default edge refuses private destinations (no WEBHOOK_ALLOW_PRIVATE).
    ({"webhook_url": "http://127.0.0.1:9/hook"}, "webhook_url"),
    ({"webhook_url": "http://[::ffff:10.0.0.1]/hook"}, "webhook_url"),
    ({"webhook_url": "http://localhost:8080/hook"}, "webhook_url"),
    ({"webhook_url": "http://2130706433/hook"}, "webhook_url"),
]


def test_bad_webhook_fields_are_invalid_input(client: TestClient) -> None:
    for fields, field in BAD_FIELDS:
        assert invalid_fields(create(client, fields)) == [field], fields


def test_the_json_body_takes_webhook_fields_and_checks_them(client: TestClient) -> None:
    body = {"image_upload_id": "x", "audio_upload_id": "y", "prompt": "Hi"}
    unknown = {**body, "webhook_url": "https://example.com/h", "webhook_events": ["job.done"]}
    assert invalid_fields(client.post("/generate", headers=AUTH, json=unknown)) == [
        "webhook_events.0"
    ]
    private = {**body, "webhook_url": "http://169.254.169.254/latest/meta-data"}
    assert invalid_fields(client.post("/generate", headers=AUTH, json=private)) == ["webhook_url"]


def test_each_change_is_an_event_signed_and_carrying_the_status_view(
    hooks: tuple[LocalRuntime, TestClient], receiver: Receiver, clock: FakeClock
) -> None:
    _, client = hooks
    job_id = hooked_job(client, receiver.url, ALL_EVENTS)
    grant = claim(client, job_id)
    token = grant["claim_token"]
    for progress in (10, 20):  # the second within 5 s of the first: throttled
        body = {"claim_token": token, "progress": progress, "stage": "generating"}
        assert post(client, job_id, "progress", body).status_code == 200
    clock.advance(seconds=5)
    body = {"claim_token": token, "progress": 30, "stage": "encoding"}
    assert post(client, job_id, "progress", body).status_code == 200
    upload(client, grant)
    done = {"claim_token": token, "result": {**RESULT, "size_bytes": len(VIDEO)}}
    assert post(client, job_id, "complete", done).status_code == 200
    status = client.get(f"/status/{job_id}", headers=AUTH).json()

    key = secret(client)
    requests = sorted(receiver.wait_for(4), key=lambda r: json.loads(r.body)["timestamp"])
    bodies = [receiver.verified(key, request) for request in requests]  # in any order: sorted
    assert [(b["type"], b["data"]["progress"], b["data"]["stage"]) for b in bodies] == [
        ("job.processing", 0, "downloading"),
        ("job.progress", 10, "generating"),
        ("job.progress", 30, "encoding"),
        ("job.completed", 100, "done"),
    ]
    assert bodies[-1]["data"] == status
    assert all(b["timestamp"] == b["data"]["updated_at"] for b in bodies)
    ids = [request.headers["webhook-id"] for request in requests]
    assert len(set(ids)) == 4 and all(i.startswith("msg_") for i in ids)
    log = settled(client, job_id)
    assert [event["webhook_id"] for event in log] == ids
    assert [event["state"] for event in log] == ["delivered"] * 4
    attempts = [event["attempts"] for event in log]
    assert all(len(a) == 1 and a[0]["status_code"] == 204 for a in attempts)
    assert all(a[0]["next_retry_at"] is None and a[0]["error"] is None for a in attempts)


def test_an_outage_is_retried_with_the_same_webhook_id(
    hooks: tuple[LocalRuntime, TestClient], receiver: Receiver
) -> None:
    _, client = hooks
    receiver.statuses.extend([503, 500])
    job_id = hooked_job(client, receiver.url)
    assert client.delete(f"/jobs/{job_id}", headers=AUTH).status_code == 200
    requests = receiver.wait_for(3)
    key = secret(client)
    assert [receiver.verified(key, r)["type"] for r in requests] == ["job.cancelled"] * 3
    assert len({r.headers["webhook-id"] for r in requests}) == 1
    assert len({r.body for r in requests}) == 1
    event = _settled(client, job_id)
    assert event["state"] == "delivered"
    codes = [(a["attempt"], a["status_code"]) for a in event["attempts"]]
    assert codes == [(1, 503), (2, 500), (3, 204)]
    first, _, third = event["attempts"]
    assert first["error"] == "the receiver answered 503"
    assert first["next_retry_at"] > first["attempted_at"]
    assert third["next_retry_at"] is None


def settled(client: TestClient, job_id: str) -> list[dict[str, Any]]:
    """The job's events once each one's last attempt is recorded (the receiver answers first)."""
    for _ in range(250):
        events = deliveries(client, job_id)["events"]
        if all(event["state"] in ("delivered", "failed") for event in events):
            return list(events)
        time.sleep(0.02)
    raise AssertionError(f"not settled: {events}")


def _settled(client: TestClient, job_id: str) -> dict[str, Any]:
    (event,) = settled(client, job_id)
    return event


def test_the_edge_gives_up_after_its_attempts_or_on_410(
    hooks: tuple[LocalRuntime, TestClient], receiver: Receiver
) -> None:
    _, client = hooks
    receiver.statuses.extend([500, 500, 500])
    failing = hooked_job(client, receiver.url)
    client.delete(f"/jobs/{failing}", headers=AUTH)
    receiver.wait_for(3)
    event = _settled(client, failing)
    assert (event["state"], len(event["attempts"])) == ("failed", 3)
    assert event["attempts"][-1]["next_retry_at"] is None

    receiver.statuses.append(410)
    gone = hooked_job(client, receiver.url)
    client.delete(f"/jobs/{gone}", headers=AUTH)
    receiver.wait_for(4)
    event = _settled(client, gone)
    assert (event["state"], len(event["attempts"])) == ("failed", 1)
    assert "410 Gone" in event["attempts"][0]["error"]


def test_an_unreachable_receiver_is_an_attempt_without_a_status(
    hooks: tuple[LocalRuntime, TestClient],
) -> None:
    _, client = hooks
    with webhook_receiver() as closed:
        url = closed.url
    job_id = hooked_job(client, url)
    client.delete(f"/jobs/{job_id}", headers=AUTH)
    event = _settled(client, job_id)
    assert event["state"] == "failed"
    assert [a["status_code"] for a in event["attempts"]] == [None, None, None]
    assert all(a["error"] for a in event["attempts"])


def test_a_failure_by_the_sweep_is_an_event_too(
    hooks: tuple[LocalRuntime, TestClient], receiver: Receiver, clock: FakeClock
) -> None:
    runtime, client = hooks
    job_id = hooked_job(client, receiver.url)
    claim(client, job_id)
    clock.advance(seconds=121)  # past the heartbeat timeout, within the receiver's tolerance
    assert asyncio.run(runtime.use_cases.maintenance.sweep()).failed_lost == 1
    (request,) = receiver.wait_for(1)
    body = receiver.verified(secret(client), request)
    assert (body["type"], body["data"]["error"]["code"]) == ("job.failed", "MAX_ATTEMPTS_EXCEEDED")


def test_redeliver_sends_the_last_event_again_with_its_id(
    hooks: tuple[LocalRuntime, TestClient], receiver: Receiver
) -> None:
    _, client = hooks
    job_id = hooked_job(client, receiver.url)
    finish(client, job_id)
    (first,) = receiver.wait_for(1)
    _settled(client, job_id)
    again = client.post(f"/jobs/{job_id}/webhooks/redeliver", headers=AUTH)
    assert again.status_code == 200, again.text
    assert (again.json()["state"], again.json()["type"]) == ("pending", "job.completed")
    second = receiver.wait_for(2)[1]
    assert second.headers["webhook-id"] == first.headers["webhook-id"]
    assert second.body == first.body
    event = _settled(client, job_id)
    assert [a["attempt"] for a in event["attempts"]] == [1, 2]


def test_redeliver_needs_a_webhook_and_an_event(
    hooks: tuple[LocalRuntime, TestClient], receiver: Receiver
) -> None:
    _, client = hooks
    plain = create(client, {}).json()["job_id"]
    refused = client.post(f"/jobs/{plain}/webhooks/redeliver", headers=AUTH)
    assert refused.status_code == 409
    assert refused.json()["error"]["details"] == {"field": "webhook_url"}
    waiting = hooked_job(client, receiver.url)
    early = client.post(f"/jobs/{waiting}/webhooks/redeliver", headers=AUTH)
    assert early.status_code == 409
    assert early.json()["error"]["details"] == {"status": "pending"}
    for path in (f"/jobs/{waiting}/webhooks", f"/jobs/{waiting}/webhooks/redeliver"):
        method = client.get if path.endswith("webhooks") else client.post
        response = method(path, headers=OTHER_AUTH)
        assert (response.status_code, response.json()["error"]["code"]) == (404, "JOB_NOT_FOUND")


def test_a_rotation_signs_with_both_secrets_for_a_while(
    hooks: tuple[LocalRuntime, TestClient], receiver: Receiver
) -> None:
    _, client = hooks
    old = secret(client)
    assert old.startswith("whsec_") and secret(client) == old
    assert client.get("/webhooks/secret", headers=OTHER_AUTH).json()["secret"] != old
    rotated = client.post("/webhooks/secret/rotate", headers=AUTH)
    assert rotated.status_code == 200
    new = rotated.json()["secret"]
    assert new != old and secret(client) == new
    job_id = hooked_job(client, receiver.url)
    client.delete(f"/jobs/{job_id}", headers=AUTH)
    (request,) = receiver.wait_for(1)
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    for key in (new, old):
        assert receiver.verified(key, request)["data"]["job_id"] == job_id


def test_webhook_routes_need_a_key(client: TestClient) -> None:
    for method, path in (
        ("GET", "/webhooks/secret"),
        ("POST", "/webhooks/secret/rotate"),
        ("GET", "/jobs/x/webhooks"),
        ("POST", "/jobs/x/webhooks/redeliver"),
    ):
        assert client.request(method, path).status_code == 401


def test_the_agent_never_sees_the_webhook(
    hooks: tuple[LocalRuntime, TestClient], receiver: Receiver
) -> None:
    _, client = hooks
    job_id = hooked_job(client, receiver.url)
    grant = client.post(
        f"/agent/jobs/{job_id}/claim", json={"agent_id": "a"}, headers=AGENT_AUTH
    ).json()
    assert receiver.url not in json.dumps(grant)


def test_the_sdk_drives_webhooks_sync_and_async(
    hooks: tuple[LocalRuntime, TestClient], receiver: Receiver, tmp_path: Path
) -> None:
    """Both clients against the real app: Litestar's test client is an httpx client, and the
    async one goes through httpx's ASGI transport."""
    runtime, client = hooks
    image, audio = tmp_path / "face.png", tmp_path / "speech.wav"
    image.write_bytes(png_bytes())
    audio.write_bytes(wav_bytes())
    sdk = AvatarClient(str(client.base_url), API_KEY, http=client)
    handle = sdk.submit(image, audio, "Hi", webhook_url=receiver.url, webhook_events=["job.failed"])
    log = sdk.webhook_deliveries(handle.id)
    assert (log.webhook_url, log.webhook_events) == (receiver.url, [WebhookEventType.FAILED])
    old = sdk.webhook_secret()
    assert sdk.rotate_webhook_secret() not in (old, "")

    async def async_calls() -> tuple[str, str]:
        transport = httpx.ASGITransport(app=runtime.app)
        async with httpx.AsyncClient(transport=transport) as http:
            async_sdk = AsyncAvatarClient(str(client.base_url), API_KEY, http=http)
            job = await async_sdk.submit(image, audio, "Hi", webhook_url=receiver.url)
            await job.cancel()
            again = await async_sdk.redeliver_webhook(job.id)
            listed = await async_sdk.webhook_deliveries(job.id)
            return again.webhook_id, listed.events[0].webhook_id

    again, listed = asyncio.run(async_calls())
    assert again == listed
    with pytest.raises(errors.Conflict, match="no webhook event yet"):
        sdk.redeliver_webhook(handle.id)
