"""The agent protocol over HTTP: token auth, claim fencing, progress, complete, fail."""

from typing import Any

import pytest
from litestar.testing import TestClient

from contracts import QueueMessage
from tests.edge_worker.conftest import (
    ACK_URL,
    AGENT_AUTH,
    API_KEY,
    AUTH,
    PULL_URL,
    QUEUE_AUTH,
    invalid_fields,
    submit,
)

RESULT = {
    "size_bytes": 0,
    "duration_seconds": 0.5,
    "width": 480,
    "height": 600,
    "engine": "preview",
}
VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(200)


def claim(client: TestClient, job_id: str, agent: str = "agent-1") -> dict[str, Any]:
    response = client.post(
        f"/agent/jobs/{job_id}/claim", json={"agent_id": agent, "lease_id": "l"}, headers=AGENT_AUTH
    )
    assert response.status_code == 200, response.text
    return response.json()


def upload(client: TestClient, grant: dict[str, Any], body: bytes = VIDEO) -> None:
    response = client.put(
        grant["output"]["upload_url"], content=body, headers={"Content-Type": "video/mp4"}
    )
    assert response.status_code == 200, response.text


def post(client: TestClient, job_id: str, action: str, body: dict[str, Any]) -> Any:
    return client.post(f"/agent/jobs/{job_id}/{action}", json=body, headers=AGENT_AUTH)


def test_agent_routes_refuse_client_keys_and_no_token(client: TestClient) -> None:
    job = submit(client)
    for headers in ({}, AUTH, {"Authorization": f"Bearer {API_KEY}x"}):
        response = client.post(
            f"/agent/jobs/{job['job_id']}/claim", json={"agent_id": "a"}, headers=headers
        )
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "UNAUTHORIZED"


def test_the_queue_carries_only_the_job_id(client: TestClient) -> None:
    job = submit(client)
    pulled = client.post(PULL_URL, json={"batch_size": 5}, headers=QUEUE_AUTH).json()
    (message,) = pulled["result"]["messages"]
    assert message["metadata"]["CF-Content-Type"] == "json"
    from contracts import PulledMessage

    decoded = QueueMessage.decode_pulled(PulledMessage.model_validate(message))
    assert decoded.job_id == job["job_id"]
    assert decoded.v == 1
    acked = client.post(
        ACK_URL, json={"acks": [{"lease_id": message["lease_id"]}]}, headers=QUEUE_AUTH
    )
    assert acked.json()["result"]["ackCount"] == 1


def test_the_claim_hands_the_agent_the_jobs_quality(client: TestClient) -> None:
    job = submit(client, quality="fast")
    assert claim(client, job["job_id"])["settings"]["quality"] == "fast"


def test_full_protocol_happy_path(client: TestClient) -> None:
    job = submit(client)
    grant = claim(client, job["job_id"])
    assert grant["attempt"] == 1
    assert grant["prompt"] == "A person talking"
    assert (grant["settings"]["resolution"], grant["settings"]["quality"]) == ("480p", "standard")
    assert grant["output"]["key"] == f"videos/{job['job_id']}/1.mp4"
    image = client.get(grant["inputs"]["image_url"])
    assert image.status_code == 200
    assert image.content.startswith(b"\x89PNG")
    assert client.get(grant["inputs"]["audio_url"]).content.startswith(b"RIFF")

    status = client.get(f"/status/{job['job_id']}", headers=AUTH).json()
    assert (status["status"], status["stage"], status["attempts"]) == (
        "processing",
        "downloading",
        1,
    )
    assert status["queue_position"] is None

    token = grant["claim_token"]
    reply = post(
        client,
        job["job_id"],
        "progress",
        {"claim_token": token, "progress": 42.5, "stage": "generating", "eta_seconds": 8.2},
    )
    assert reply.json() == {"cancel_requested": False}
    status = client.get(f"/status/{job['job_id']}", headers=AUTH).json()
    # Whole seconds, rounded up: never closer to done than the agent's estimate.
    assert (status["progress"], status["stage"], status["eta_seconds"]) == (42.5, "generating", 9)

    upload(client, grant)
    done = post(
        client,
        job["job_id"],
        "complete",
        {"claim_token": token, "result": {**RESULT, "size_bytes": len(VIDEO)}},
    )
    assert done.status_code == 200, done.text
    status = client.get(f"/status/{job['job_id']}", headers=AUTH).json()
    assert (status["status"], status["progress"], status["engine"]) == ("completed", 100, "preview")
    assert status["expires_at"] is not None
    assert client.get(status["result_url"]).content == VIDEO

    result = client.get(f"/result/{job['job_id']}", headers=AUTH).json()
    assert result["content_type"] == "video/mp4"
    assert (result["size_bytes"], result["width"], result["height"]) == (len(VIDEO), 480, 600)
    assert result["expires_at"] <= status["expires_at"]
    assert client.get(result["url"]).content == VIDEO


def test_the_result_url_answers_head_and_ranges_so_a_player_can_seek(
    client: TestClient,
) -> None:
    job = submit(client)
    grant = claim(client, job["job_id"])
    upload(client, grant)
    body = {"claim_token": grant["claim_token"], "result": {**RESULT, "size_bytes": len(VIDEO)}}
    assert post(client, job["job_id"], "complete", body).status_code == 200
    url = client.get(f"/result/{job['job_id']}", headers=AUTH).json()["url"]
    described = client.head(url)
    assert (described.status_code, described.content) == (200, b"")
    assert described.headers["content-length"] == str(len(VIDEO))
    assert described.headers["accept-ranges"] == "bytes"
    tail = client.get(url, headers={"Range": "bytes=-8"})
    assert (tail.status_code, tail.content) == (206, VIDEO[-8:])
    assert tail.headers["content-range"] == f"bytes {len(VIDEO) - 8}-{len(VIDEO) - 1}/{len(VIDEO)}"
    assert "x-request-id" in tail.headers


def test_a_job_is_claimed_once(client: TestClient) -> None:
    job = submit(client)
    claim(client, job["job_id"])
    again = client.post(
        f"/agent/jobs/{job['job_id']}/claim", json={"agent_id": "b"}, headers=AGENT_AUTH
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "CONFLICT"
    unknown = client.post("/agent/jobs/nope/claim", json={"agent_id": "b"}, headers=AGENT_AUTH)
    assert unknown.status_code == 404


def test_stale_claim_token_is_fenced(client: TestClient) -> None:
    job = submit(client)
    grant = claim(client, job["job_id"])
    upload(client, grant)
    for action, body in [
        ("progress", {"claim_token": "stale", "progress": 1, "stage": "generating"}),
        ("complete", {"claim_token": "stale", "result": {**RESULT, "size_bytes": len(VIDEO)}}),
        ("fail", {"claim_token": "stale", "code": "GENERATION_FAILED", "message": "x"}),
    ]:
        response = post(client, job["job_id"], action, body)
        assert response.status_code == 409, action
    assert client.get(f"/status/{job['job_id']}", headers=AUTH).json()["status"] == "processing"


def test_complete_needs_the_uploaded_object(client: TestClient) -> None:
    job = submit(client)
    grant = claim(client, job["job_id"])
    body = {"claim_token": grant["claim_token"], "result": {**RESULT, "size_bytes": len(VIDEO)}}
    missing = post(client, job["job_id"], "complete", body)
    assert missing.status_code == 503
    upload(client, grant, VIDEO[:-1])
    wrong_size = post(client, job["job_id"], "complete", body)
    assert wrong_size.json()["error"]["details"]["stored_bytes"] == len(VIDEO) - 1


def test_non_retryable_failure_is_shown_to_the_owner(client: TestClient) -> None:
    job = submit(client)
    grant = claim(client, job["job_id"])
    response = post(
        client,
        job["job_id"],
        "fail",
        {
            "claim_token": grant["claim_token"],
            "code": "INVALID_INPUT",
            "message": "audio cannot be decoded",
            "retryable": False,
        },
    )
    assert response.status_code == 200
    status = client.get(f"/status/{job['job_id']}", headers=AUTH).json()
    assert status["status"] == "failed"
    assert status["error"] == {"code": "INVALID_INPUT", "message": "audio cannot be decoded"}


def test_retryable_failure_requeues_the_job(client: TestClient) -> None:
    job = submit(client)
    first = client.post(PULL_URL, json={"batch_size": 1}, headers=QUEUE_AUTH).json()["result"][
        "messages"
    ]
    client.post(ACK_URL, json={"acks": [{"lease_id": first[0]["lease_id"]}]}, headers=QUEUE_AUTH)
    grant = claim(client, job["job_id"])
    post(
        client,
        job["job_id"],
        "fail",
        {
            "claim_token": grant["claim_token"],
            "code": "STORAGE_ERROR",
            "message": "upload failed",
            "retryable": True,
        },
    )
    status = client.get(f"/status/{job['job_id']}", headers=AUTH).json()
    assert (status["status"], status["attempts"], status["error"]) == ("pending", 1, None)
    again = client.post(PULL_URL, json={"batch_size": 1}, headers=QUEUE_AUTH).json()["result"][
        "messages"
    ]
    assert len(again) == 1
    assert claim(client, job["job_id"])["attempt"] == 2


@pytest.mark.parametrize(
    "body",
    [
        {"claim_token": "t", "progress": 101, "stage": "generating"},
        {"claim_token": "t", "progress": 1, "stage": "sleeping"},
        {"progress": 1, "stage": "generating"},
        {"claim_token": "t", "progress": 1, "stage": "cancelled"},  # only a client cancels
    ],
)
def test_malformed_agent_bodies_are_invalid_input(client: TestClient, body: dict) -> None:
    job = submit(client)
    response = post(client, job["job_id"], "progress", body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "INVALID_INPUT"
    if body.get("stage") == "cancelled":
        assert "fail the job instead" in response.text


@pytest.mark.parametrize("busy", [0, 1, "true", None])
def test_a_heartbeats_busy_is_a_json_boolean(client: TestClient, busy: object) -> None:
    body = {"agent_id": "agent-h", "busy": busy}
    response = client.post("/agent/heartbeat", json=body, headers=AGENT_AUTH)
    assert response.status_code == 400
    assert invalid_fields(response) == ["busy"]


@pytest.mark.parametrize("busy", [True, False])
def test_a_heartbeat_says_whether_its_agent_is_busy(client: TestClient, busy: bool) -> None:
    body = {"agent_id": "agent-h", "busy": busy}
    response = client.post("/agent/heartbeat", json=body, headers=AGENT_AUTH)
    assert (response.status_code, response.json()) == (200, {"drain": False})


def test_lost_replies_are_safe_to_retry(client: TestClient) -> None:
    job = submit(client)
    grant = claim(client, job["job_id"], agent="agent-r")
    again = claim(client, job["job_id"], agent="agent-r")
    assert again["claim_token"] == grant["claim_token"]
    assert again["attempt"] == 1
    upload(client, grant)
    body = {"claim_token": grant["claim_token"], "result": {**RESULT, "size_bytes": len(VIDEO)}}
    assert post(client, job["job_id"], "complete", body).status_code == 200
    assert post(client, job["job_id"], "complete", body).status_code == 200
    fail = {"claim_token": grant["claim_token"], "code": "GENERATION_FAILED", "message": "x"}
    assert post(client, job["job_id"], "fail", fail).json()["status"] == "completed"


def test_missing_upload_is_a_retryable_storage_error(client: TestClient) -> None:
    job = submit(client)
    grant = claim(client, job["job_id"])
    body = {"claim_token": grant["claim_token"], "result": {**RESULT, "size_bytes": len(VIDEO)}}
    response = post(client, job["job_id"], "complete", body)
    assert (response.status_code, response.json()["error"]["code"]) == (503, "STORAGE_ERROR")


def test_a_handed_back_job_is_offered_again_at_once(client: TestClient) -> None:
    from tests.edge_worker.test_cancel_and_maintenance import drain_queue

    job = submit(client)
    drain_queue(client)
    grant = claim(client, job["job_id"])
    body = {
        "claim_token": grant["claim_token"],
        "code": "AGENT_SHUTDOWN",
        "message": "agent shutting down",
        "retryable": True,
    }
    assert post(client, job["job_id"], "fail", body).json()["status"] == "pending"
    assert len(drain_queue(client)) == 1


def test_protocol_calls_for_unknown_jobs_are_404(client: TestClient) -> None:
    bodies = {
        "progress": {"claim_token": "t", "progress": 1, "stage": "generating"},
        "complete": {"claim_token": "t", "result": {**RESULT, "size_bytes": 1}},
        "fail": {"claim_token": "t", "code": "GENERATION_FAILED", "message": "x"},
    }
    for action, body in bodies.items():
        response = post(client, "no-such-job", action, body)
        assert (response.status_code, response.json()["error"]["code"]) == (404, "JOB_NOT_FOUND")
