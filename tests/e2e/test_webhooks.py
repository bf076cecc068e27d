"""Webhooks on the live local stack (`avatar-edge serve` and a preview agent as processes):
a receiver in this process verifies every request with `standardwebhooks`, is down for its
first requests, and sees the deliveries resume under the same webhook-id; the time from a
job's completion to its webhook is measured and printed."""

import json
from collections.abc import Callable
from datetime import datetime

from tests.e2e.conftest import EXAMPLES, Stack, terminal, wait_for
from tests.webhook_receiver import webhook_receiver

OUTAGE = 2  # the receiver answers 503 to its first requests


def test_webhooks_survive_an_outage_and_arrive_soon_after_completion(
    stack_factory: Callable[..., Stack],
) -> None:
    stack = stack_factory(
        WEBHOOK_ALLOW_PRIVATE="1", WEBHOOK_RETRY_BASE_SECONDS="0.2", WEBHOOK_POLL_SECONDS="0.5"
    )
    stack.start_agent()
    with webhook_receiver([503] * OUTAGE) as receiver, stack.client() as client:
        with (
            (EXAMPLES / "portrait.png").open("rb") as img,
            (EXAMPLES / "speech.wav").open("rb") as wav,
        ):
            created = client.post(
                "/generate",
                files={"image": ("portrait.png", img), "audio": ("speech.wav", wav)},
                data={
                    "prompt": "A presenter talking",
                    "resolution": "480p",
                    "webhook_url": receiver.url,
                    "webhook_events": ["job.processing", "job.completed"],
                },
            )
        assert created.status_code == 200, created.text
        job_id = created.json()["job_id"]
        status = wait_for(client, job_id, terminal, timeout=120)
        assert status["status"] == "completed", stack.logs()
        secret = client.get("/webhooks/secret").json()["secret"]
        requests = receiver.wait_for(OUTAGE + 2)

    bodies = [receiver.verified(secret, request) for request in requests]
    ids = [request.headers["webhook-id"] for request in requests]
    types = dict(zip(ids, (body["type"] for body in bodies), strict=True))
    assert sorted(set(types.values())) == ["job.completed", "job.processing"]
    retried = [webhook_id for webhook_id in set(ids) if ids.count(webhook_id) > 1]
    assert retried, f"no event was tried twice: {ids}"
    completed = [
        (r, b) for r, b in zip(requests, bodies, strict=True) if b["type"] == "job.completed"
    ]
    assert completed[-1][1]["data"] == status

    log = client_log(stack, job_id)
    assert [event["state"] for event in log] == ["delivered", "delivered"]
    attempts = [a["status_code"] for event in log for a in event["attempts"]]
    assert attempts.count(503) == OUTAGE and attempts.count(204) == 2

    done_at = datetime.fromisoformat(status["completed_at"]).timestamp()
    first_completed = completed[0][0].at
    latency_ms = (first_completed - done_at) * 1000
    print(f"\ncompletion -> webhook latency: {latency_ms:.1f} ms", json.dumps(attempts))
    assert 0 <= latency_ms < 5000


def client_log(stack: Stack, job_id: str) -> list[dict]:
    with stack.client() as client:
        return list(client.get(f"/jobs/{job_id}/webhooks").json()["events"])
