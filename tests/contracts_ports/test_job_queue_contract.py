"""The JobQueue contract: what SqliteQueue and QueueProducer (on real local Queues) send
reaches a consumer of the queue, body intact, and a delayed message waits its turn."""

import asyncio
import time
import uuid
from datetime import UTC, datetime

from contracts import QueueMessage
from tests.contracts_ports.queue_under_test import QueueUnderTest

ENQUEUED = datetime(2026, 5, 1, 12, 0, 0, 654321, tzinfo=UTC)


def message() -> QueueMessage:
    return QueueMessage(job_id=str(uuid.uuid4()), enqueued_at=ENQUEUED)


def test_a_sent_message_is_delivered_with_its_body(queue_under_test: QueueUnderTest) -> None:
    sent = message()
    asyncio.run(queue_under_test.queue.send(sent))
    assert queue_under_test.wait_for(1) == [sent]


def test_every_message_is_delivered_once(queue_under_test: QueueUnderTest) -> None:
    sent = [message() for _ in range(3)]

    async def send_all() -> None:
        for item in sent:
            await queue_under_test.queue.send(item)

    asyncio.run(send_all())
    delivered = queue_under_test.wait_for(3)
    time.sleep(0.5)  # room for a duplicate to show up
    assert sorted(m.job_id for m in queue_under_test.delivered()) == sorted(m.job_id for m in sent)
    assert len(delivered) == 3


def test_a_delayed_message_waits_for_its_delay(queue_under_test: QueueUnderTest) -> None:
    delayed, prompt = message(), message()
    started = time.monotonic()

    async def send_both() -> None:
        await queue_under_test.queue.send(delayed, delay_seconds=2)
        await queue_under_test.queue.send(prompt)

    asyncio.run(send_both())
    assert queue_under_test.wait_for(1) == [prompt]
    assert queue_under_test.wait_for(2) == [prompt, delayed]
    assert time.monotonic() - started >= 1.5
