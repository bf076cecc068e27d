"""`Idempotency-Key` on POST /generate: the rules, then over HTTP."""

from datetime import UTC, datetime, timedelta

from litestar.testing import TestClient

from contracts import Quality
from edge_worker.domain import idempotency
from edge_worker.domain.idempotency import Decision, IdempotencyRecord
from tests.conftest import png_bytes, wav_bytes
from tests.edge_worker.conftest import AUTH, OTHER_AUTH, FakeClock, invalid_fields

T0 = datetime(2026, 11, 25, tzinfo=UTC)


def record(job_id: str | None = None, created: datetime = T0) -> IdempotencyRecord:
    return IdempotencyRecord("o", "k", "print", job_id, created, created + idempotency.KEY_TTL)


def test_decisions() -> None:
    assert idempotency.decide(None, "print", T0) is Decision.CREATE
    assert idempotency.decide(record("j"), "print", T0) is Decision.REPLAY
    assert idempotency.decide(record("j"), "other", T0) is Decision.MISMATCH
    assert idempotency.decide(record(), "print", T0 + timedelta(seconds=5)) is Decision.IN_PROGRESS
    assert idempotency.decide(record(), "print", T0 + timedelta(minutes=6)) is Decision.TAKE_OVER
    assert idempotency.decide(record("j"), "other", T0 + timedelta(hours=25)) is Decision.TAKE_OVER


def test_key_rules_and_fingerprint() -> None:
    assert idempotency.valid_key("order-123")
    assert not idempotency.valid_key("")
    assert not idempotency.valid_key("x" * 256)
    assert not idempotency.valid_key("tab\there")
    assert idempotency.fingerprint(["a", "b"]) != idempotency.fingerprint(["ab"])


def test_a_standard_request_prints_as_it_did_before_quality_existed() -> None:
    """Keys stored before the deploy that added `quality` still match their retries."""
    parts = ["multipart", "hello", "720p", "None", "sha-image", "sha-audio"]
    standard = idempotency.request_fingerprint(*parts, quality=Quality.STANDARD)
    assert standard == idempotency.fingerprint(parts)
    assert idempotency.request_fingerprint(*parts, quality=Quality.FAST) != standard


def post(  # type: ignore[no-untyped-def]
    client: TestClient,
    key: str,
    prompt: str = "hello",
    auth: dict | None = None,
    **fields: str,
):
    return client.post(
        "/generate",
        headers={**(auth or AUTH), "Idempotency-Key": key},
        files={"image": ("i.png", png_bytes()), "audio": ("a.wav", wav_bytes())},
        data={"prompt": prompt, **fields},
    )


def test_same_key_same_request_returns_the_same_job(client: TestClient) -> None:
    first = post(client, "order-1")
    second = post(client, "order-1")
    assert first.status_code == second.status_code == 200
    assert first.json()["job_id"] == second.json()["job_id"]
    assert len(client.get("/jobs", headers=AUTH).json()["jobs"]) == 1


def test_same_key_different_request_is_422(client: TestClient) -> None:
    post(client, "order-2")
    response = post(client, "order-2", prompt="something else")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"


def test_quality_is_part_of_the_request(client: TestClient) -> None:
    first = post(client, "order-q").json()
    assert post(client, "order-q", quality="standard").json()["job_id"] == first["job_id"]
    response = post(client, "order-q", quality="fast")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"


def test_keys_are_per_api_key(client: TestClient) -> None:
    mine = post(client, "shared-key").json()["job_id"]
    theirs = post(client, "shared-key", auth=OTHER_AUTH).json()["job_id"]
    assert mine != theirs


def test_a_request_that_dies_releases_its_key(client: TestClient, runtime) -> None:  # type: ignore[no-untyped-def]
    creation = runtime.use_cases.creation
    original = creation._create_job

    async def crash(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("storage died mid-request")

    creation._create_job = crash
    assert post(client, "order-3").status_code == 500
    creation._create_job = original
    retried = post(client, "order-3")
    assert retried.status_code == 200
    assert post(client, "order-3").json()["job_id"] == retried.json()["job_id"]


def test_in_progress_key_gets_409(client: TestClient, runtime, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    from edge_worker.auth import owner_id
    from tests.edge_worker.conftest import API_KEY, PEPPER

    response = post(client, "order-4")
    job_id = response.json()["job_id"]
    existing = asyncio.run(
        runtime.store.get_idempotency(owner_id(API_KEY, PEPPER), idempotency.client_key("order-4"))
    )
    assert existing is not None and existing.job_id == job_id
    # Pretend the first request is still running: the record has no job yet.
    asyncio.run(runtime.store.delete_idempotency(existing))
    pending_record = IdempotencyRecord(
        existing.owner, existing.key, existing.fingerprint, None, clock.now(), existing.expires_at
    )
    asyncio.run(runtime.store.insert_idempotency(pending_record))
    conflict = post(client, "order-4")
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "CONFLICT"
    # Five minutes later the stuck attempt is presumed dead and a retry takes over.
    clock.advance(minutes=6)
    retried = post(client, "order-4")
    assert retried.status_code == 200
    assert retried.json()["job_id"] != job_id


def test_invalid_key_is_400(client: TestClient) -> None:
    response = post(client, "x" * 300)
    assert invalid_fields(response) == ["Idempotency-Key"]
