"""The local Cloudflare Queues pull/ack HTTP API, in Cloudflare's request and response shapes."""

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from contracts import AckResult, PulledMessage, PullResult, QueueMessage
from edge_worker.adapters.local.queue_routes import queue_routes
from edge_worker.adapters.local.sqlite_queue import SqliteQueue
from edge_worker.http.errors import exception_handlers

ACCOUNT = "local"
QUEUE = "avatar-jobs"
TOKEN = "cf-api-token"
BASE = f"/client/v4/accounts/{ACCOUNT}/queues/{QUEUE}/messages"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ENVELOPE_KEYS = {"success", "errors", "messages", "result"}


class FakeClock:
    def __init__(self) -> None:
        self.ms = 1_714_564_800_000

    def __call__(self) -> int:
        return self.ms


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def queue(tmp_path: Path, clock: FakeClock) -> Iterator[SqliteQueue]:
    q = SqliteQueue(
        tmp_path / "q.sqlite3", max_retries=3, default_visibility_ms=30_000, now_ms=clock
    )
    yield q
    q.close()


@pytest.fixture
def client(queue: SqliteQueue) -> Iterator[TestClient[Litestar]]:
    app = Litestar(
        route_handlers=[queue_routes(queue, ACCOUNT, QUEUE, TOKEN)],
        exception_handlers=exception_handlers,
    )
    with TestClient(app) as c:
        yield c


def send(queue: SqliteQueue, clock: FakeClock, *job_ids: str) -> None:
    for job_id in job_ids:
        enqueued = datetime(2024, 5, 1, tzinfo=UTC)
        asyncio.run(queue.send(QueueMessage(job_id=job_id, enqueued_at=enqueued)))
        clock.ms += 1


def ok(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == ENVELOPE_KEYS
    assert body["success"] is True
    assert body["errors"] == [] and body["messages"] == []
    return body["result"]


def refused(response: Any, status: int) -> list[dict[str, Any]]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == ENVELOPE_KEYS
    assert body["success"] is False
    assert body["result"] is None
    assert body["errors"], body
    for error in body["errors"]:
        assert isinstance(error["code"], int) and isinstance(error["message"], str)
    return body["errors"]


def pull(client: TestClient[Litestar], **body: Any) -> PullResult:
    return PullResult.model_validate(ok(client.post(f"{BASE}/pull", json=body, headers=AUTH)))


def ack(client: TestClient[Litestar], **body: Any) -> AckResult:
    return AckResult.model_validate(ok(client.post(f"{BASE}/ack", json=body, headers=AUTH)))


# --- round trip --------------------------------------------------------------------------


def test_pull_then_ack_round_trip(
    client: TestClient[Litestar], queue: SqliteQueue, clock: FakeClock
) -> None:
    send(queue, clock, "job-1", "job-2")
    response = client.post(
        f"{BASE}/pull", json={"batch_size": 1, "visibility_timeout_ms": 60_000}, headers=AUTH
    )
    result = ok(response)
    assert set(result) == {"messages", "message_backlog_count"}
    assert result["message_backlog_count"] == 2
    (raw,) = result["messages"]
    assert set(raw) == {"id", "body", "timestamp_ms", "attempts", "lease_id", "metadata"}
    assert raw["metadata"]["CF-Content-Type"] == "json"
    assert raw["attempts"] == 1
    message = PulledMessage.model_validate(raw)
    assert QueueMessage.decode_pulled(message).job_id == "job-1"

    acked = ok(
        client.post(f"{BASE}/ack", json={"acks": [{"lease_id": raw["lease_id"]}]}, headers=AUTH)
    )
    assert acked["ackCount"] == 1 and acked["retryCount"] == 0
    assert acked["warnings"] == []

    clock.ms += 120_000
    rest = pull(client, batch_size=10)
    assert [QueueMessage.decode_pulled(m).job_id for m in rest.messages] == ["job-2"]
    assert rest.message_backlog_count == 1


def test_empty_pull(client: TestClient[Litestar]) -> None:
    result = pull(client, batch_size=5)
    assert result.messages == [] and result.message_backlog_count == 0


def test_pull_with_empty_json_body_uses_defaults(
    client: TestClient[Litestar], queue: SqliteQueue, clock: FakeClock
) -> None:
    send(queue, clock, *(f"j{n}" for n in range(7)))
    assert len(pull(client).messages) == 5  # PullRequest's default batch size
    assert len(pull(client).messages) == 2
    clock.ms += 29_999
    assert pull(client).messages == []  # the queue's default visibility: 30 s
    clock.ms += 1
    assert len(pull(client, batch_size=100).messages) == 7


def test_batch_size_is_respected(
    client: TestClient[Litestar], queue: SqliteQueue, clock: FakeClock
) -> None:
    send(queue, clock, *(f"j{n}" for n in range(4)))
    assert len(pull(client, batch_size=3).messages) == 3
    assert len(pull(client, batch_size=3).messages) == 1


def test_retry_through_the_ack_endpoint(
    client: TestClient[Litestar], queue: SqliteQueue, clock: FakeClock
) -> None:
    send(queue, clock, "job-1")
    lease = pull(client, batch_size=1, visibility_timeout_ms=3_600_000).messages[0].lease_id
    result = ack(client, retries=[{"lease_id": lease, "delay_seconds": 5}])
    assert result.retryCount == 1 and result.ackCount == 0
    clock.ms += 4_999
    assert pull(client).messages == []
    clock.ms += 1
    again = pull(client).messages
    assert len(again) == 1 and again[0].attempts == 2


def test_ack_of_unknown_lease_is_success_with_zero_count(client: TestClient[Litestar]) -> None:
    result = ack(client, acks=[{"lease_id": "never-issued"}])
    assert result.ackCount == 0 and result.retryCount == 0
    assert ack(client).ackCount == 0  # an empty ack body is fine too


# --- visibility timeouts: both field names -----------------------------------------------


@pytest.mark.parametrize("field", ["visibility_timeout_ms", "visibility_timeout"])
def test_visibility_timeout_is_honoured_under_either_name(
    client: TestClient[Litestar], queue: SqliteQueue, clock: FakeClock, field: str
) -> None:
    send(queue, clock, "job-1")
    first = pull(client, batch_size=1, **{field: 5_000}).messages
    assert len(first) == 1
    clock.ms += 4_999
    assert pull(client, batch_size=1).messages == []
    clock.ms += 1
    second = pull(client, batch_size=1, **{field: 5_000}).messages
    assert [m.id for m in second] == [first[0].id]
    assert second[0].attempts == 2
    # The superseded lease no longer acks anything; the current one does.
    assert ack(client, acks=[{"lease_id": first[0].lease_id}]).ackCount == 0
    assert ack(client, acks=[{"lease_id": second[0].lease_id}]).ackCount == 1


def test_new_name_wins_when_both_are_given(
    client: TestClient[Litestar], queue: SqliteQueue, clock: FakeClock
) -> None:
    send(queue, clock, "job-1")
    pull(client, batch_size=1, visibility_timeout_ms=2_000, visibility_timeout=60_000)
    clock.ms += 2_000
    assert len(pull(client, batch_size=1).messages) == 1


def test_max_retries_through_http(
    client: TestClient[Litestar], queue: SqliteQueue, clock: FakeClock
) -> None:
    send(queue, clock, "poison")
    attempts = []
    for _ in range(queue.max_retries + 1):
        messages = pull(client, batch_size=1, visibility_timeout_ms=1_000).messages
        attempts.append(messages[0].attempts)
        clock.ms += 1_000
    assert attempts == [1, 2, 3, 4]
    result = pull(client, batch_size=1)
    assert result.messages == [] and result.message_backlog_count == 0
    assert queue.dead_letter_count() == 1


# --- auth and addressing -----------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
        {"Authorization": "Bearer "},
        {"Authorization": f"Bearer {TOKEN}x"},
    ],
)
@pytest.mark.parametrize("endpoint", ["pull", "ack"])
def test_wrong_token_is_401_in_cloudflares_shape(
    client: TestClient[Litestar],
    queue: SqliteQueue,
    clock: FakeClock,
    headers: dict[str, str],
    endpoint: str,
) -> None:
    send(queue, clock, "job-1")
    response = client.post(f"{BASE}/{endpoint}", json={}, headers=headers)
    errors = refused(response, 401)
    assert errors == [{"code": 10000, "message": "Authentication error"}]
    # Nothing was leased by the refused call.
    assert len(pull(client, batch_size=1).messages) == 1


def test_bearer_scheme_is_case_insensitive(client: TestClient[Litestar]) -> None:
    ok(client.post(f"{BASE}/pull", json={}, headers={"Authorization": f"bearer {TOKEN}"}))


@pytest.mark.parametrize(
    "path",
    [
        f"/client/v4/accounts/other/queues/{QUEUE}/messages",
        f"/client/v4/accounts/{ACCOUNT}/queues/other-queue/messages",
        "/client/v4/accounts/other/queues/other-queue/messages",
    ],
)
@pytest.mark.parametrize("endpoint", ["pull", "ack"])
def test_wrong_account_or_queue_is_404(
    client: TestClient[Litestar],
    queue: SqliteQueue,
    clock: FakeClock,
    path: str,
    endpoint: str,
) -> None:
    send(queue, clock, "job-1")
    response = client.post(f"{path}/{endpoint}", json={}, headers=AUTH)
    errors = refused(response, 404)
    assert errors[0]["code"] == 11000
    assert len(pull(client, batch_size=1).messages) == 1


def test_token_is_checked_before_the_queue_name(client: TestClient[Litestar]) -> None:
    """An unauthenticated caller learns nothing about which queues exist."""
    response = client.post(
        "/client/v4/accounts/other/queues/other/messages/pull",
        json={},
        headers={"Authorization": "Bearer nope"},
    )
    refused(response, 401)


# --- malformed requests ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "body"),
    [
        ("pull", {"batch_size": 0}),
        ("pull", {"batch_size": 101}),
        ("pull", {"batch_size": "lots"}),
        ("pull", {"visibility_timeout_ms": -1}),
        ("pull", {"visibility_timeout_ms": 12 * 3600 * 1000 + 1}),
        ("pull", {"visibility_timeout": 0}),
        ("pull", [1, 2, 3]),
        ("ack", {"acks": "lease"}),
        ("ack", {"acks": [{"no_lease_id": 1}]}),
        ("ack", {"retries": [{"lease_id": "x", "delay_seconds": -5}]}),
        ("ack", {"retries": [{"lease_id": "x", "delay_seconds": 43201}]}),
    ],
)
def test_invalid_body_is_400_with_success_false(
    client: TestClient[Litestar], endpoint: str, body: Any
) -> None:
    response = client.post(f"{BASE}/{endpoint}", json=body, headers=AUTH)
    errors = refused(response, 400)
    assert errors[0]["code"] == 10400


@pytest.mark.parametrize("endpoint", ["pull", "ack"])
def test_unparseable_body_is_4xx_with_success_false(
    client: TestClient[Litestar], endpoint: str
) -> None:
    response = client.post(
        f"{BASE}/{endpoint}",
        content=b"{not json",
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert 400 <= response.status_code < 500
    refused(response, response.status_code)


def test_unexpected_failure_is_500_in_cloudflares_shape(
    client: TestClient[Litestar], queue: SqliteQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*_: Any, **__: Any) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(queue, "pull", explode)
    response = client.post(f"{BASE}/pull", json={}, headers=AUTH)
    errors = refused(response, 500)
    assert errors == [{"code": 10500, "message": "internal error"}]
    assert "disk on fire" not in response.text


def test_get_is_not_allowed(client: TestClient[Litestar]) -> None:
    response = client.get(f"{BASE}/pull", headers=AUTH)
    assert response.status_code == 405
