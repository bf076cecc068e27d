"""Cancellation over HTTP, and the maintenance sweep: lost agents, expiry, cleanup."""

import asyncio
from typing import Any
from urllib.parse import urlsplit

from litestar.testing import TestClient

from edge_worker.local import LocalRuntime
from tests.edge_worker.conftest import (
    ACK_URL,
    AGENT_AUTH,
    AUTH,
    OTHER_AUTH,
    PULL_URL,
    QUEUE_AUTH,
    FakeClock,
    submit,
)
from tests.edge_worker.test_agent_api import RESULT, VIDEO, claim, post, upload
from tests.edge_worker.test_uploads import generate, uploaded


def sweep(runtime: LocalRuntime) -> dict[str, int]:
    return vars(asyncio.run(runtime.use_cases.maintenance.sweep()))


def status(client: TestClient, job_id: str) -> dict[str, Any]:
    return client.get(f"/status/{job_id}", headers=AUTH).json()


def drain_queue(client: TestClient) -> list[dict[str, Any]]:
    pulled = client.post(PULL_URL, json={"batch_size": 100}, headers=QUEUE_AUTH).json()
    messages = pulled["result"]["messages"]
    if messages:
        acks = [{"lease_id": m["lease_id"]} for m in messages]
        client.post(ACK_URL, json={"acks": acks}, headers=QUEUE_AUTH)
    return messages


def test_cancel_a_pending_job(client: TestClient) -> None:
    job = submit(client)
    response = client.delete(f"/jobs/{job['job_id']}", headers=AUTH)
    assert response.status_code == 200
    cancelled = response.json()
    assert (cancelled["status"], cancelled["stage"]) == ("cancelled", "cancelled")
    assert cancelled["completed_at"] is None
    assert client.delete(f"/jobs/{job['job_id']}", headers=AUTH).status_code == 200
    refused = client.post(
        f"/agent/jobs/{job['job_id']}/claim", json={"agent_id": "a"}, headers=AGENT_AUTH
    )
    assert refused.status_code == 409


def test_cancel_a_processing_job_tells_the_agent_and_publishes_nothing(
    client: TestClient,
) -> None:
    job = submit(client)
    grant = claim(client, job["job_id"])
    token = grant["claim_token"]
    assert client.delete(f"/jobs/{job['job_id']}", headers=AUTH).json()["status"] == "cancelled"
    reply = post(
        client,
        job["job_id"],
        "progress",
        {"claim_token": token, "progress": 50, "stage": "generating"},
    )
    assert reply.json() == {"cancel_requested": True}
    upload(client, grant)
    done = post(
        client,
        job["job_id"],
        "complete",
        {"claim_token": token, "result": {**RESULT, "size_bytes": len(VIDEO)}},
    )
    assert done.status_code == 409
    failed = post(
        client,
        job["job_id"],
        "fail",
        {"claim_token": token, "code": "GENERATION_FAILED", "message": "stopped"},
    )
    assert failed.status_code == 200
    final = status(client, job["job_id"])
    assert (final["status"], final["result_url"], final["error"]) == ("cancelled", None, None)
    assert (final["stage"], final["completed_at"]) == ("cancelled", None)
    assert client.get(f"/result/{job['job_id']}", headers=AUTH).status_code == 404


def test_cancel_refuses_finished_jobs_and_other_keys(client: TestClient) -> None:
    job = submit(client)
    assert client.delete(f"/jobs/{job['job_id']}", headers=OTHER_AUTH).status_code == 404
    grant = claim(client, job["job_id"])
    post(
        client,
        job["job_id"],
        "fail",
        {"claim_token": grant["claim_token"], "code": "INVALID_INPUT", "message": "bad"},
    )
    response = client.delete(f"/jobs/{job['job_id']}", headers=AUTH)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "CONFLICT"


def test_lost_agent_job_is_requeued_and_its_late_complete_refused(
    client: TestClient, runtime: LocalRuntime, clock: FakeClock
) -> None:
    job = submit(client)
    drain_queue(client)
    grant = claim(client, job["job_id"], agent="zombie")
    upload(client, grant)
    clock.advance(seconds=121)
    report = sweep(runtime)
    assert report["requeued_lost"] == 1
    assert status(client, job["job_id"])["status"] == "pending"
    (message,) = drain_queue(client)
    second = claim(client, job["job_id"], agent="healthy")
    assert second["attempt"] == 2
    late = post(
        client,
        job["job_id"],
        "complete",
        {"claim_token": grant["claim_token"], "result": {**RESULT, "size_bytes": len(VIDEO)}},
    )
    assert late.status_code == 409
    assert message["attempts"] == 1
    assert sweep(runtime)["requeued_lost"] == 0


def test_lost_too_often_fails_with_a_clear_code(
    client: TestClient, runtime: LocalRuntime, clock: FakeClock
) -> None:
    job = submit(client)
    for _ in range(3):
        drain_queue(client)
        claim(client, job["job_id"])
        clock.advance(seconds=121)
        sweep(runtime)
    final = status(client, job["job_id"])
    assert (final["status"], final["attempts"]) == ("failed", 3)
    assert final["error"]["code"] == "MAX_ATTEMPTS_EXCEEDED"


def test_expiry_deletes_blobs_and_answers_410(
    client: TestClient, runtime: LocalRuntime, clock: FakeClock
) -> None:
    job = submit(client)
    grant = claim(client, job["job_id"])
    upload(client, grant)
    post(
        client,
        job["job_id"],
        "complete",
        {"claim_token": grant["claim_token"], "result": {**RESULT, "size_bytes": len(VIDEO)}},
    )
    report = sweep(runtime)
    assert report["inputs_deleted"] == 1
    assert runtime.blobs.path_of(f"videos/{job['job_id']}/1.mp4").exists()
    assert not list(runtime.blobs.root.glob(f"inputs/{job['job_id']}/*"))
    clock.advance(hours=6, seconds=1)
    assert sweep(runtime)["expired"] == 1
    assert not runtime.blobs.path_of(f"videos/{job['job_id']}/1.mp4").exists()
    assert status(client, job["job_id"])["status"] == "expired"
    gone = client.get(f"/result/{job['job_id']}", headers=AUTH)
    assert (gone.status_code, gone.json()["error"]["code"]) == (410, "RESULT_EXPIRED")
    assert sweep(runtime) == {key: 0 for key in sweep(runtime)}


def test_failed_jobs_lose_their_inputs_and_unpublished_upload(
    client: TestClient, runtime: LocalRuntime
) -> None:
    job = submit(client)
    grant = claim(client, job["job_id"])
    upload(client, grant)
    post(
        client,
        job["job_id"],
        "fail",
        {"claim_token": grant["claim_token"], "code": "GENERATION_FAILED", "message": "x"},
    )
    assert sweep(runtime)["inputs_deleted"] == 1
    assert not list(runtime.blobs.root.rglob("*.*"))


def test_stranded_pending_job_is_enqueued_again(
    client: TestClient, runtime: LocalRuntime, clock: FakeClock
) -> None:
    job = submit(client)
    drain_queue(client)  # the message is lost (e.g. dead-lettered)
    assert sweep(runtime)["reenqueued_stranded"] == 0
    clock.advance(seconds=901)
    assert sweep(runtime)["reenqueued_stranded"] == 1
    (message,) = drain_queue(client)
    assert claim(client, job["job_id"])["attempt"] == 1
    assert message["attempts"] == 1


def test_expired_idempotency_keys_are_purged(
    client: TestClient, runtime: LocalRuntime, clock: FakeClock
) -> None:
    from tests.conftest import png_bytes, wav_bytes

    client.post(
        "/generate",
        headers={**AUTH, "Idempotency-Key": "k1"},
        files={"image": ("i.png", png_bytes()), "audio": ("a.wav", wav_bytes())},
        data={"prompt": "x"},
    )
    assert sweep(runtime)["idempotency_keys_purged"] == 0
    clock.advance(hours=24, seconds=1)
    assert sweep(runtime)["idempotency_keys_purged"] == 1


def test_two_sweeps_at_once_apply_each_change_once(
    client: TestClient, runtime: LocalRuntime, clock: FakeClock
) -> None:
    jobs_ = [submit(client) for _ in range(3)]
    drain_queue(client)
    for job in jobs_:
        claim(client, job["job_id"])
    clock.advance(seconds=121)
    maintenance = runtime.use_cases.maintenance

    async def both() -> list[Any]:
        return await asyncio.gather(maintenance.sweep(), maintenance.sweep())

    first, second = asyncio.run(both())
    assert first.requeued_lost + second.requeued_lost == 3
    assert len(drain_queue(client)) == 3


def test_retry_delay_backs_off_exponentially(runtime: LocalRuntime) -> None:
    from dataclasses import replace

    from edge_worker.domain import jobs
    from edge_worker.usecases.wiring import UseCases

    context = runtime.use_cases.context
    settings = context.settings.model_copy(update={"retry_backoff_seconds": 5})
    agent_protocol = UseCases.build(replace(context, settings=settings)).agent_protocol
    job = jobs.new_job(
        job_id="x",
        owner="o",
        prompt="p",
        resolution=jobs.Resolution.P480,
        seed=None,
        image_key="inputs/x/image.png",
        audio_key="inputs/x/audio.wav",
        now=context.clock.now(),
    )
    delays = [agent_protocol.retry_delay(replace(job, attempts=n)) for n in (1, 2, 3, 10)]
    assert delays == [5, 10, 20, 300]


def test_a_zombie_upload_never_replaces_the_published_result(
    client: TestClient, runtime: LocalRuntime, clock: FakeClock
) -> None:
    job = submit(client)
    drain_queue(client)
    zombie = claim(client, job["job_id"], agent="zombie")
    clock.advance(seconds=121)
    sweep(runtime)
    drain_queue(client)
    healthy = claim(client, job["job_id"], agent="healthy")
    assert healthy["output"]["key"] != zombie["output"]["key"]
    upload(client, healthy)
    post(
        client,
        job["job_id"],
        "complete",
        {"claim_token": healthy["claim_token"], "result": {**RESULT, "size_bytes": len(VIDEO)}},
    )
    upload(client, zombie, b"zombie bytes")
    result = client.get(f"/result/{job['job_id']}", headers=AUTH).json()
    assert client.get(result["url"]).content == VIDEO
    sweep(runtime)
    leftovers = asyncio.run(runtime.blobs.list_keys(f"videos/{job['job_id']}/"))
    assert leftovers == [healthy["output"]["key"]]


def test_uploads_never_used_are_deleted_once_their_ticket_expired(
    client: TestClient, runtime: LocalRuntime, clock: FakeClock
) -> None:
    unused, used = uploaded(client), uploaded(client)
    assert generate(client, used).status_code == 200
    assert sweep(runtime)["unused_uploads_deleted"] == 0
    clock.advance(hours=23)
    fresh = uploaded(client)
    clock.advance(hours=1, minutes=4)
    assert sweep(runtime)["unused_uploads_deleted"] == 0  # expired, but within the grace
    clock.advance(minutes=1, seconds=1)
    assert sweep(runtime)["unused_uploads_deleted"] == 2

    def stored(grants: dict[str, Any]) -> list[bool]:
        keys = [urlsplit(g["url"]).path.removeprefix("/blobs/") for g in grants.values() if g]
        return [runtime.blobs.path_of(key).exists() for key in keys]

    assert stored(unused) == [False, False]
    assert stored(used) == [True, True]  # its job still reads them
    assert stored(fresh) == [True, True]
    assert len(list(runtime.blobs.root.glob("inputs/uploads/*/"))) == 4  # no empty folders
    assert sweep(runtime)["unused_uploads_deleted"] == 0
