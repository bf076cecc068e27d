"""SqliteQueue: Cloudflare Queues pull/ack semantics on SQLite, with an injected clock."""

import asyncio
import base64
import json
import sqlite3
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from contracts import AckRequest, LeaseRef, PulledMessage, QueueMessage, RetryRef
from edge_worker.adapters.local.sqlite_queue import SqliteQueue, _now_ms

T0_MS = 1_714_564_800_000  # 2024-05-01T12:00:00Z
ENQUEUED = datetime(2024, 5, 1, 12, 0, 0, 654321, tzinfo=UTC)


class FakeClock:
    def __init__(self, ms: int = T0_MS) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms

    def advance(self, ms: int) -> None:
        self.ms += ms


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def queue(tmp_path: Path, clock: FakeClock) -> Any:
    q = SqliteQueue(
        tmp_path / "queue.sqlite3", max_retries=3, default_visibility_ms=30_000, now_ms=clock
    )
    yield q
    q.close()


def send(q: SqliteQueue, job_id: str, delay_seconds: int = 0) -> None:
    asyncio.run(q.send(QueueMessage(job_id=job_id, enqueued_at=ENQUEUED), delay_seconds))


def job_ids(messages: list[PulledMessage]) -> list[str]:
    return [QueueMessage.decode_pulled(m).job_id for m in messages]


def acks(*leases: str) -> AckRequest:
    return AckRequest(acks=[LeaseRef(lease_id=lease) for lease in leases])


def retries(*leases: str, delay: int | None = None) -> AckRequest:
    return AckRequest(retries=[RetryRef(lease_id=lease, delay_seconds=delay) for lease in leases])


# --- send / pull -------------------------------------------------------------------------


def test_pulled_body_is_base64_json_like_cloudflare(queue: SqliteQueue, clock: FakeClock) -> None:
    sent = QueueMessage(job_id="job-1", enqueued_at=ENQUEUED)
    asyncio.run(queue.send(sent))
    clock.advance(5)
    result = queue.pull(1)
    assert len(result.messages) == 1
    message = result.messages[0]
    assert message.metadata["CF-Content-Type"] == "json"
    decoded = json.loads(base64.b64decode(message.body, validate=True))
    assert decoded["v"] == 1 and decoded["job_id"] == "job-1"
    assert datetime.fromisoformat(decoded["enqueued_at"]) == ENQUEUED
    assert QueueMessage.decode_pulled(message) == sent
    assert message.timestamp_ms == T0_MS  # when it was sent, not when pulled
    assert message.attempts == 1
    assert message.lease_id and message.id
    assert result.message_backlog_count == 1


def test_pull_on_an_empty_queue(queue: SqliteQueue) -> None:
    result = queue.pull(10)
    assert result.messages == [] and result.message_backlog_count == 0


def test_each_lease_id_is_unique(queue: SqliteQueue, clock: FakeClock) -> None:
    for n in range(5):
        send(queue, f"j{n}")
    leases = [m.lease_id for m in queue.pull(5).messages]
    clock.advance(30_000)
    leases += [m.lease_id for m in queue.pull(5).messages]
    assert len(leases) == len(set(leases)) == 10


# --- visibility and redelivery -----------------------------------------------------------


def test_leased_message_is_invisible_until_the_visibility_timeout(
    queue: SqliteQueue, clock: FakeClock
) -> None:
    send(queue, "job-1")
    first = queue.pull(1, visibility_timeout_ms=10_000).messages[0]
    clock.advance(9_999)
    assert queue.pull(1).messages == []
    clock.advance(1)
    again = queue.pull(1, visibility_timeout_ms=10_000).messages
    assert len(again) == 1
    assert again[0].id == first.id
    assert again[0].attempts == 2
    assert again[0].lease_id != first.lease_id
    assert again[0].timestamp_ms == first.timestamp_ms
    clock.advance(10_000)
    third = queue.pull(1).messages[0]
    assert third.attempts == 3


def test_default_visibility_timeout_applies_when_none_given(
    queue: SqliteQueue, clock: FakeClock
) -> None:
    send(queue, "job-1")
    queue.pull(1)
    clock.advance(29_999)
    assert queue.pull(1).messages == []
    clock.advance(1)
    assert len(queue.pull(1).messages) == 1


def test_second_instance_on_the_same_file_does_not_see_a_leased_message(
    tmp_path: Path, clock: FakeClock
) -> None:
    a = SqliteQueue(tmp_path / "q.sqlite3", now_ms=clock)
    b = SqliteQueue(tmp_path / "q.sqlite3", now_ms=clock)
    send(a, "job-1")
    assert len(a.pull(1, 1_000).messages) == 1
    assert b.pull(1).messages == []
    clock.advance(1_000)
    assert job_ids(b.pull(1).messages) == ["job-1"]
    a.close()
    b.close()


# --- ack / retry -------------------------------------------------------------------------


def test_ack_removes_the_message(queue: SqliteQueue, clock: FakeClock) -> None:
    send(queue, "job-1")
    clock.advance(1)
    send(queue, "job-2")
    pulled = queue.pull(2).messages
    assert job_ids(pulled) == ["job-1", "job-2"]
    result = queue.ack(acks(pulled[0].lease_id))
    assert result.ackCount == 1 and result.retryCount == 0
    clock.advance(60_000)
    after = queue.pull(10)
    assert job_ids(after.messages) == ["job-2"]
    assert after.message_backlog_count == 1


def test_ack_of_unknown_lease_is_accepted_and_counts_zero(queue: SqliteQueue) -> None:
    send(queue, "job-1")
    result = queue.ack(acks("no-such-lease"))
    assert result.ackCount == 0 and result.retryCount == 0 and result.warnings == []
    assert queue.pull(1).message_backlog_count == 1


def test_ack_of_superseded_lease_counts_zero_and_keeps_the_message(
    queue: SqliteQueue, clock: FakeClock
) -> None:
    send(queue, "job-1")
    old = queue.pull(1, 1_000).messages[0]
    clock.advance(1_000)
    new = queue.pull(1, 1_000).messages[0]
    assert queue.ack(acks(old.lease_id)).ackCount == 0
    assert queue.ack(retries(old.lease_id)).retryCount == 0
    assert queue.ack(acks(new.lease_id)).ackCount == 1
    assert queue.ack(acks(new.lease_id)).ackCount == 0  # acking twice is harmless
    clock.advance(10_000)
    assert queue.pull(1).messages == []


def test_ack_several_at_once(queue: SqliteQueue, clock: FakeClock) -> None:
    for n in range(4):
        send(queue, f"job-{n}")
        clock.advance(1)
    leases = [m.lease_id for m in queue.pull(4).messages]
    result = queue.ack(AckRequest(acks=[LeaseRef(lease_id=x) for x in leases[:3]]))
    assert result.ackCount == 3
    clock.advance(30_000)
    assert job_ids(queue.pull(4).messages) == ["job-3"]


def test_empty_ack_request(queue: SqliteQueue) -> None:
    result = queue.ack(AckRequest())
    assert (result.ackCount, result.retryCount) == (0, 0)


def test_retry_with_delay_makes_it_visible_after_the_delay(
    queue: SqliteQueue, clock: FakeClock
) -> None:
    send(queue, "job-1")
    lease = queue.pull(1, visibility_timeout_ms=3_600_000).messages[0].lease_id
    clock.advance(500)
    result = queue.ack(retries(lease, delay=10))
    assert result.retryCount == 1 and result.ackCount == 0
    clock.advance(9_999)
    assert queue.pull(1).messages == []
    clock.advance(1)
    again = queue.pull(1).messages
    assert job_ids(again) == ["job-1"]
    assert again[0].attempts == 2


def test_retry_without_delay_is_visible_at_once(queue: SqliteQueue) -> None:
    send(queue, "job-1")
    lease = queue.pull(1, visibility_timeout_ms=3_600_000).messages[0].lease_id
    assert queue.ack(AckRequest(retries=[RetryRef(lease_id=lease)])).retryCount == 1
    assert queue.ack(retries(lease)).retryCount == 0  # the lease is gone once retried
    assert job_ids(queue.pull(1).messages) == ["job-1"]


def test_ack_and_retry_in_one_request(queue: SqliteQueue) -> None:
    send(queue, "job-a")
    send(queue, "job-b")
    first, second = queue.pull(2, visibility_timeout_ms=3_600_000).messages
    result = queue.ack(
        AckRequest(
            acks=[LeaseRef(lease_id=first.lease_id)],
            retries=[RetryRef(lease_id=second.lease_id, delay_seconds=0)],
        )
    )
    assert (result.ackCount, result.retryCount) == (1, 1)
    assert job_ids(queue.pull(2).messages) == [QueueMessage.decode_pulled(second).job_id]


# --- max retries and dead letters --------------------------------------------------------


def test_message_delivered_max_retries_plus_one_times_is_dead_lettered(
    tmp_path: Path, clock: FakeClock
) -> None:
    q = SqliteQueue(tmp_path / "q.sqlite3", max_retries=2, now_ms=clock)
    send(q, "poison")
    clock.advance(1)
    send(q, "healthy")
    attempts = []
    for _ in range(3):
        pulled = q.pull(1, 1_000).messages
        assert job_ids(pulled) == ["poison"]
        attempts.append(pulled[0].attempts)
        clock.advance(1_000)
    assert attempts == [1, 2, 3]
    assert q.dead_letter_count() == 0  # still leased until now
    result = q.pull(1, 1_000)
    assert job_ids(result.messages) == ["healthy"]
    assert q.dead_letter_count() == 1
    assert result.message_backlog_count == 1  # only "healthy" is left
    q.ack(acks(result.messages[0].lease_id))
    for _ in range(5):
        clock.advance(3_600_000)
        assert q.pull(10).messages == []
    assert q.dead_letter_count() == 1
    q.close()
    with sqlite3.connect(tmp_path / "q.sqlite3") as conn:
        rows = conn.execute("SELECT body, attempts, timestamp_ms, dead_at_ms FROM dead_letters")
        ((body, dead_attempts, timestamp_ms, dead_at_ms),) = rows.fetchall()
    assert json.loads(body)["job_id"] == "poison"
    assert dead_attempts == 3
    assert timestamp_ms == T0_MS
    assert dead_at_ms == T0_MS + 1 + 3_000


def test_retries_count_towards_max_retries(tmp_path: Path, clock: FakeClock) -> None:
    q = SqliteQueue(tmp_path / "q.sqlite3", max_retries=1, now_ms=clock)
    send(q, "job-1")
    for expected in (1, 2):
        pulled = q.pull(1).messages
        assert [m.attempts for m in pulled] == [expected]
        assert q.ack(retries(pulled[0].lease_id)).retryCount == 1
    assert q.pull(1).messages == []
    assert q.dead_letter_count() == 1
    q.close()


def test_max_retries_zero_delivers_once(tmp_path: Path, clock: FakeClock) -> None:
    q = SqliteQueue(tmp_path / "q.sqlite3", max_retries=0, now_ms=clock)
    send(q, "job-1")
    assert len(q.pull(1, 1_000).messages) == 1
    clock.advance(1_000)
    assert q.pull(1).messages == []
    assert q.dead_letter_count() == 1
    q.close()


def test_acked_final_attempt_is_not_dead_lettered(tmp_path: Path, clock: FakeClock) -> None:
    q = SqliteQueue(tmp_path / "q.sqlite3", max_retries=1, now_ms=clock)
    send(q, "job-1")
    q.pull(1, 1_000)
    clock.advance(1_000)
    last = q.pull(1, 1_000).messages[0]
    assert last.attempts == 2
    assert q.ack(acks(last.lease_id)).ackCount == 1
    clock.advance(1_000)
    assert q.pull(1).messages == []
    assert q.dead_letter_count() == 0
    q.close()


# --- backlog, batches, order, delays -----------------------------------------------------


def test_message_backlog_count(queue: SqliteQueue, clock: FakeClock) -> None:
    for n in range(5):
        send(queue, f"job-{n}")
    first = queue.pull(2)
    assert first.message_backlog_count == 5  # in-flight messages are still in the queue
    queue.ack(acks(*(m.lease_id for m in first.messages)))
    second = queue.pull(1)
    assert second.message_backlog_count == 3
    queue.ack(acks(second.messages[0].lease_id))
    assert queue.pull(10).message_backlog_count == 2


def test_batch_size_is_respected(queue: SqliteQueue) -> None:
    for n in range(7):
        send(queue, f"job-{n}")
    sizes = [len(queue.pull(3).messages) for _ in range(4)]
    assert sizes == [3, 3, 1, 0]


def test_fifo_order_by_send_time(queue: SqliteQueue, clock: FakeClock) -> None:
    names = [f"job-{n:02d}" for n in range(12)]
    for name in names:
        send(queue, name)
        clock.advance(1)
    got = job_ids(queue.pull(5).messages) + job_ids(queue.pull(5).messages)
    got += job_ids(queue.pull(5).messages)
    assert got == names


def test_fifo_order_for_messages_sent_in_the_same_millisecond(queue: SqliteQueue) -> None:
    """A burst of sends (e.g. the maintenance sweep re-enqueueing stale jobs) often lands in
    one millisecond; they must still come out in the order they were sent."""
    names = [f"job-{n:02d}" for n in range(12)]
    for name in names:
        send(queue, name)  # the clock does not move
    assert job_ids(queue.pull(12).messages) == names


def test_redelivered_message_keeps_its_place(queue: SqliteQueue, clock: FakeClock) -> None:
    send(queue, "old")
    clock.advance(1)
    lease = queue.pull(1).messages[0].lease_id
    send(queue, "new")
    queue.ack(retries(lease))
    assert job_ids(queue.pull(2).messages) == ["old", "new"]


def test_send_with_delay(queue: SqliteQueue, clock: FakeClock) -> None:
    send(queue, "later", delay_seconds=5)
    clock.advance(1)
    send(queue, "now")
    assert job_ids(queue.pull(10).messages) == ["now"]
    clock.advance(4_998)
    assert queue.pull(10).messages == []
    clock.advance(1)
    assert job_ids(queue.pull(10).messages) == ["later"]


def test_messages_persist_across_instances(tmp_path: Path, clock: FakeClock) -> None:
    first = SqliteQueue(tmp_path / "q.sqlite3", now_ms=clock)
    send(first, "durable")
    first.close()
    second = SqliteQueue(tmp_path / "q.sqlite3", now_ms=clock)
    assert job_ids(second.pull(1).messages) == ["durable"]
    second.close()


def test_failed_pull_rolls_back_and_leases_nothing(tmp_path: Path, clock: FakeClock) -> None:
    q = SqliteQueue(tmp_path / "q.sqlite3", now_ms=clock)
    send(q, "good")
    clock.advance(1)
    with sqlite3.connect(tmp_path / "q.sqlite3") as conn:
        conn.execute(
            "INSERT INTO messages (id, body, timestamp_ms, visible_at_ms) VALUES (?, ?, ?, ?)",
            ("corrupt", "{not json", clock.ms, clock.ms),
        )
    with pytest.raises(ValueError):
        q.pull(2)
    with sqlite3.connect(tmp_path / "q.sqlite3") as conn:
        leased = conn.execute("SELECT COUNT(*) FROM messages WHERE lease_id IS NOT NULL")
        assert leased.fetchone()[0] == 0
    # The connection is usable again afterwards (no transaction left open).
    with sqlite3.connect(tmp_path / "q.sqlite3") as conn:
        conn.execute("DELETE FROM messages WHERE id = 'corrupt'")
    assert job_ids(q.pull(2).messages) == ["good"]
    q.close()


def test_default_clock_is_wall_time_in_ms() -> None:
    before = int(time.time() * 1000)
    value = _now_ms()
    assert before <= value <= int(time.time() * 1000)


# --- concurrency -------------------------------------------------------------------------


def test_concurrent_pullers_on_one_file_lease_each_message_exactly_once(
    tmp_path: Path, clock: FakeClock
) -> None:
    path = tmp_path / "q.sqlite3"
    producer = SqliteQueue(path, now_ms=clock)
    total = 300
    for n in range(total):
        send(producer, f"job-{n:03d}")
    # The clock never moves, so no lease can expire and be redelivered legitimately.
    consumers = [SqliteQueue(path, now_ms=clock) for _ in range(4)]
    barrier = threading.Barrier(len(consumers))
    seen: list[list[str]] = [[] for _ in consumers]
    errors: list[BaseException] = []

    def consume(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            while True:
                messages = consumers[index].pull(3, visibility_timeout_ms=3_600_000).messages
                if not messages:
                    return
                seen[index].extend(m.id for m in messages)
        except BaseException as exc:  # surfaced below: threads swallow exceptions
            errors.append(exc)

    threads = [threading.Thread(target=consume, args=(i,)) for i in range(len(consumers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    counts = Counter(mid for ids in seen for mid in ids)
    assert len(counts) == total
    assert set(counts.values()) == {1}
    for q in (producer, *consumers):
        q.close()
