"""Fair queueing by admission: at most a few pending jobs per owner are in the queue, the
rest wait in the store (pending, `enqueued_at` unset) until that owner's queued ones are
claimed. The queue is FIFO, so owners take turns (docs/ARCHITECTURE.md, fair queueing)."""

from collections.abc import Mapping


def jobs_ahead(queued_ahead: int, own_held_ahead: int, held: Mapping[str, int], owner: str) -> int:
    """How many jobs agents will claim before a held job of `owner`.

    Every queued job goes first (`queued_ahead` counts them all), then admission takes
    turns: while `owner` moves up past its `own_held_ahead` held jobs, every other owner
    has about as many of its own held jobs admitted."""
    others = sum(min(count, own_held_ahead) for other, count in held.items() if other != owner)
    return queued_ahead + own_held_ahead + others
