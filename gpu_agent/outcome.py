"""How one queue message ended: the value the delivery returns and the loop logs."""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    """How one message ended, for logs and tests."""

    COMPLETED = "completed"
    PLANNED = "planned"  # a parallel job's segments were queued: other messages carry them
    FAILED = "failed"
    SKIPPED = "skipped"  # acked without work: poison, not claimable, unknown job
    CANCELLED = "cancelled"  # cancel requested, stale claim or job gone: no upload/complete
    REQUEUED = "requeued"  # not claimed (claim failed, or shutting down): handed back to the queue
    INTERRUPTED = "interrupted"  # shutdown grace ran out: handed back to the edge with /fail
