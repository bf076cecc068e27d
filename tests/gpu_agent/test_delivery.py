"""`MessageDelivery.handle`: decoding, claiming, acking and handing back one message."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx
import pytest

from contracts import Quality, Resolution
from gpu_agent.outcome import Outcome

from .conftest import (
    AGENT_TOKEN,
    JOB_ID,
    VIDEO,
    FakeCloud,
    FakeEngine,
    FakeProbes,
    envelope,
    interrupt_on,
    pulled,
    shutdown_fail_only,
)


def test_happy_path_claims_acks_downloads_uploads_and_completes(
    cloud: FakeCloud, make_delivery: Any, fake_probes: FakeProbes, work_dir: Path
) -> None:
    engine = FakeEngine()
    outcome = make_delivery(engine).handle(pulled())

    assert outcome is Outcome.COMPLETED
    kinds = [k for k in cloud.kinds() if k != "progress"]
    assert kinds == ["claim", "ack", "get", "get", "put", "complete"]
    assert cloud.kinds().index("progress") < cloud.kinds().index("get")  # first report first

    claim = cloud.calls[0]
    assert claim.url == f"http://edge.test/agent/jobs/{JOB_ID}/claim"
    assert claim.headers["authorization"] == f"Bearer {AGENT_TOKEN}"
    assert claim.body == {"agent_id": "agent-1", "lease_id": "lease-1", "capabilities": ["image"]}
    assert cloud.bodies("ack") == [{"acks": [{"lease_id": "lease-1"}], "retries": []}]

    gets = [call for call in cloud.calls if call.kind == "get"]
    assert gets[0].url == "http://blobs.test/inputs/image.png?X-Amz-Signature=img"
    assert gets[1].url == "http://edge.test/blobs/audio.wav?sig=aud"  # resolved against EDGE_URL
    assert all("authorization" not in call.headers for call in gets)

    request = engine.requests[0]
    assert request.image_path.name == "image.png" and request.audio_path.name == "audio.wav"
    assert request.prompt == "a person talking"
    assert request.resolution is Resolution.P480 and request.seed == 7
    assert request.quality is Quality.STANDARD
    assert [kind for kind, _ in fake_probes.seen] == ["image", "audio", "video"]

    put = next(call for call in cloud.calls if call.kind == "put")
    assert cloud.uploads["/videos/out.mp4"] == VIDEO
    assert put.headers["content-type"] == "video/mp4"
    assert put.headers["content-length"] == str(len(VIDEO))
    assert "authorization" not in put.headers

    progress = _progress_values(cloud)
    assert progress == sorted(progress) and progress[0] == 0.0
    assert all(0 <= value <= 100 for value in progress)
    assert cloud.bodies("progress")[0] == {
        "claim_token": "claim-tok",
        "progress": 0.0,
        "stage": "downloading",
        "eta_seconds": None,
        "speakers": None,
    }
    (completed,) = cloud.bodies("complete")
    assert 0 <= completed["result"].pop("gpu_seconds") < 5  # the engine's wall time
    assert completed == {
        "claim_token": "claim-tok",
        "result": {
            "size_bytes": len(VIDEO),
            "duration_seconds": 2.0,
            "width": 64,
            "height": 48,
            "engine": "preview",
            "speakers": None,
        },
    }
    assert list(work_dir.iterdir()) == []  # the per-job workdir is gone
    assert not engine.workdirs[0].exists()


def _progress_values(cloud: FakeCloud) -> list[float]:
    return [body["progress"] for body in cloud.bodies("progress")]


@pytest.mark.parametrize(
    ("reply", "name"),
    [
        (lambda r, b: envelope(409, "CONFLICT"), "conflict"),
        (lambda r, b: envelope(404, "JOB_NOT_FOUND"), "gone"),
    ],
)
def test_unclaimable_job_is_acked_without_work(
    cloud: FakeCloud, make_delivery: Any, reply: Any, name: str
) -> None:
    cloud.replies["claim"] = reply
    engine = FakeEngine()
    assert make_delivery(engine).handle(pulled()) is Outcome.SKIPPED, name
    assert cloud.kinds() == ["claim", "ack"]
    assert cloud.bodies("ack") == [{"acks": [{"lease_id": "lease-1"}], "retries": []}]
    assert engine.requests == []


@pytest.mark.parametrize(
    ("reply", "tries"),
    [
        (lambda r, b: envelope(500, "INTERNAL_ERROR"), 6),
        (lambda r, b: envelope(404, "NOT_FOUND"), 1),  # a missing route must not drop jobs
        (lambda r, b: envelope(401, "UNAUTHORIZED"), 1),  # final: asking again cannot help
        (lambda r, b: (_ for _ in ()).throw(httpx.ConnectError("refused", request=r)), 6),
    ],
    ids=["500", "route-404", "401", "network"],
)
def test_claim_error_hands_the_message_back_without_ack(
    cloud: FakeCloud, make_delivery: Any, reply: Any, tries: int
) -> None:
    cloud.replies["claim"] = reply
    delivery = make_delivery(claim_retry_delay_seconds=12)
    assert delivery.handle(pulled()) is Outcome.REQUEUED
    assert cloud.kinds() == ["claim"] * tries + ["ack"]
    assert cloud.bodies("ack") == [
        {"acks": [], "retries": [{"lease_id": "lease-1", "delay_seconds": 12}]}
    ]


def test_claim_error_survives_a_failing_retry_call(cloud: FakeCloud, make_delivery: Any) -> None:
    cloud.replies["claim"] = lambda r, b: envelope(503, "STORAGE_ERROR")
    cloud.replies["ack"] = lambda r, b: httpx.Response(500, json={"success": False})
    assert make_delivery().handle(pulled()) is Outcome.REQUEUED


@pytest.mark.parametrize(
    "message",
    [
        pulled(body=base64.b64encode(b"not json").decode()),
        pulled(body="%%%not-base64%%%"),
        pulled(body=base64.b64encode(b'{"v":1}').decode()),
        pulled(
            body='{"v":2,"job_id":"x","enqueued_at":"2025-01-01T00:00:00Z"}',
            metadata={"CF-Content-Type": "text"},
        ),
        pulled(body=base64.b64encode(b"\xff\xfe").decode()),
    ],
    ids=["not-json", "not-base64", "no-job-id", "unknown-version", "not-utf8"],
)
def test_poison_message_is_acked_and_skipped(
    cloud: FakeCloud, make_delivery: Any, message: Any
) -> None:
    assert make_delivery().handle(message) is Outcome.SKIPPED
    assert cloud.kinds() == ["ack"]


def test_text_message_is_accepted(cloud: FakeCloud, make_delivery: Any) -> None:
    message = pulled(
        body=f'{{"v":1,"job_id":"{JOB_ID}","enqueued_at":"2025-01-01T00:00:00Z"}}',
        metadata={"CF-Content-Type": "text"},
    )
    assert make_delivery().handle(message) is Outcome.COMPLETED


def test_poison_message_survives_a_failing_ack(cloud: FakeCloud, make_delivery: Any) -> None:
    cloud.replies["ack"] = lambda r, b: httpx.Response(502, text="bad gateway")
    assert make_delivery().handle(pulled(body="garbage")) is Outcome.SKIPPED


def test_failed_ack_after_claim_does_not_stop_the_job(cloud: FakeCloud, make_delivery: Any) -> None:
    cloud.replies["ack"] = lambda r, b: httpx.Response(
        200, json={"success": False, "errors": [{"code": 10000, "message": "auth"}]}
    )
    assert make_delivery().handle(pulled()) is Outcome.COMPLETED


def test_ack_after_claim_is_retried(cloud: FakeCloud, make_delivery: Any) -> None:
    cloud.script("ack", httpx.ConnectError, 429)
    assert make_delivery().handle(pulled()) is Outcome.COMPLETED
    assert cloud.kinds()[:4] == ["claim", "ack", "ack", "ack"]


def test_interrupt_during_the_claim_hands_the_job_back_at_once(
    cloud: FakeCloud, make_delivery: Any
) -> None:
    engine = FakeEngine()
    delivery = make_delivery(engine)
    interrupt_on(cloud, delivery, lambda c: c.kind == "claim")
    assert delivery.handle(pulled()) is Outcome.INTERRUPTED
    assert cloud.kinds() == ["claim", "ack", "fail"]
    assert engine.requests == []
    shutdown_fail_only(cloud)


def test_an_interrupted_delivery_hands_messages_back_unclaimed(
    cloud: FakeCloud, make_delivery: Any
) -> None:
    delivery = make_delivery()
    delivery.interrupt()  # no job in progress: nothing to stop now
    assert delivery.handle(pulled()) is Outcome.REQUEUED
    assert cloud.kinds() == ["ack"]
    assert cloud.bodies("ack") == [
        {"acks": [], "retries": [{"lease_id": "lease-1", "delay_seconds": 0}]}
    ]
