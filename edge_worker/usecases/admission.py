"""Fair queueing, applied (rules in `domain.admission`): a new job enters the queue only
while its owner has fewer than `QUEUED_JOBS_PER_KEY` there; a claim, and the sweep as a
safety net, admit the owner's next held jobs."""

import logging

from contracts import QueueMessage
from edge_worker.domain import jobs
from edge_worker.usecases.context import EdgeContext
from edge_worker.usecases.transitions import JobTransitions, TransitionRefused

log = logging.getLogger("edge_worker.jobs")

SWEEP_OWNERS = 100


class Admission:
    def __init__(self, context: EdgeContext, transitions: JobTransitions) -> None:
        self.context = context
        self.transitions = transitions

    def holds_back(self, queued: int) -> bool:
        """Whether an owner with `queued` jobs in the queue gets its next one held."""
        return queued >= self.context.settings.queued_jobs_per_key

    async def admit_next(self, owner: str) -> int:
        """Enqueue `owner`'s oldest held jobs until it has its share queued; how many."""
        store = self.context.store
        now = self.context.clock.now()
        load = await store.owner_load(owner, now)
        room = self.context.settings.queued_jobs_per_key - load.queued
        admitted = 0
        for held in await store.held_jobs(owner, max(room, 0)):
            try:
                await self.transitions.transition(held.id, lambda j: jobs.admit(j, now=now))
            except TransitionRefused:
                continue  # cancelled, or admitted by a concurrent top-up
            await self.context.queue.send(QueueMessage(job_id=held.id, enqueued_at=now))
            log.info("job admitted", extra={"job_id": held.id})
            admitted += 1
        return admitted

    async def top_up(self) -> int:
        """The sweep's pass: every owner with held jobs gets its share queued."""
        admitted = 0
        for owner in await self.context.store.owners_with_held(SWEEP_OWNERS):
            admitted += await self.admit_next(owner)
        return admitted
