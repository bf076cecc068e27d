"""A queue adapter under test: its producer, and what a consumer of its queue was handed."""

import time
from collections.abc import Callable
from dataclasses import dataclass

from contracts import QueueMessage
from edge_worker.ports import JobQueue


@dataclass
class QueueUnderTest:
    """A producer and a way to see what a consumer of its queue was handed."""

    queue: JobQueue
    delivered: Callable[[], list[QueueMessage]]

    def wait_for(self, count: int, timeout_s: float = 15.0) -> list[QueueMessage]:
        deadline = time.monotonic() + timeout_s
        seen: list[QueueMessage] = []
        while time.monotonic() < deadline:
            seen = self.delivered()
            if len(seen) >= count:
                return seen
            time.sleep(0.1)
        raise AssertionError(f"{len(seen)} of {count} messages delivered in {timeout_s} s")
