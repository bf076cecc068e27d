"""Webhooks on the Worker under Pyodide: an event goes to the WEBHOOKS queue binding, and the
Worker's queue consumer (`Default.queue`, run with a batch as workerd runs it) delivers it
with JS fetch to a real receiver, signed for `standardwebhooks`, acking a delivery and
retrying a failure with its delay under the same webhook-id; D1 keeps the attempts."""

from typing import Any

import httpx

from tests.edge_worker.conftest import AUTH
from tests.edge_worker.test_webhooks import create
from tests.pyodide.runner import RunningWorker
from tests.webhook_receiver import webhook_receiver

QUEUE = "avatar-webhooks"  # wrangler.toml's WEBHOOKS producer and consumer


def queued_for(worker: RunningWorker, seen: int) -> list[dict[str, Any]]:
    return [m for m in worker.queued()[seen:] if m.get("queue") == QUEUE]


def test_the_queue_consumer_delivers_retries_and_acks(
    client: httpx.Client, worker: RunningWorker
) -> None:
    with webhook_receiver([503]) as receiver:
        seen = len(worker.queued())
        job_id = create(client, {"webhook_url": receiver.url}).json()["job_id"]
        assert client.delete(f"/jobs/{job_id}", headers=AUTH).status_code == 200
        (message,) = queued_for(worker, seen)
        assert message["options"] == {"contentType": "json"}
        batch = [{"id": "m1", "body": message["body"], "attempts": 1}]

        assert worker.consume(QUEUE, batch) == [{"id": "m1", "retry": {"delaySeconds": 5}}]
        batch[0]["attempts"] = 2
        assert worker.consume(QUEUE, batch) == [{"id": "m1", "ack": True}]
        assert worker.consume(QUEUE, batch) == [{"id": "m1", "ack": True}]  # a duplicate

        first, second = receiver.wait_for(2)
        assert len(receiver.received) == 2  # the duplicate was not sent again
        secret = client.get("/webhooks/secret", headers=AUTH).json()["secret"]
        for request in (first, second):
            body = receiver.verified(secret, request)
            assert (body["type"], body["data"]["job_id"]) == ("job.cancelled", job_id)
        assert first.headers["webhook-id"] == second.headers["webhook-id"]
        assert first.headers["user-agent"] == "avatar-webhooks"

    (event,) = client.get(f"/jobs/{job_id}/webhooks", headers=AUTH).json()["events"]
    assert event["state"] == "delivered"
    assert [a["status_code"] for a in event["attempts"]] == [503, 204]

    seen = len(worker.queued())
    again = client.post(f"/jobs/{job_id}/webhooks/redeliver", headers=AUTH)
    assert again.status_code == 200
    (redelivery,) = queued_for(worker, seen)
    assert redelivery["body"] == {**message["body"], "series": 1}


def test_a_malformed_message_is_acked_and_dropped(worker: RunningWorker) -> None:
    batch = [{"id": "bad", "body": {"nope": 1}}, {"id": "gone", "body": {"webhook_id": "x"}}]
    assert worker.consume(QUEUE, batch) == [{"id": "bad", "ack": True}, {"id": "gone", "ack": True}]
