"""The per-key limits, applied: a token from the caller's bucket per `POST /generate` or
`/uploads`, and the unfinished-job cap and daily video quota per new job."""

from contracts.errors import LimitName
from edge_worker.domain import quotas
from edge_worker.domain.quotas import Caller, OwnerLoad, QuotaExceeded, RateState
from edge_worker.usecases.context import EdgeContext
from edge_worker.usecases.transitions import CAS_ATTEMPTS


class Quotas:
    def __init__(self, context: EdgeContext) -> None:
        self.context = context

    def rate_limit(self, caller: Caller) -> int:
        return caller.limits.rate_limit_per_minute or self.context.settings.rate_limit_per_minute

    async def take_request(self, caller: Caller) -> RateState:
        """One token, or `QuotaExceeded`: a compare-and-set on the owner's bucket, re-read
        when another request wrote it first."""
        limit = self.rate_limit(caller)
        buckets = self.context.buckets
        for _ in range(CAS_ATTEMPTS):
            stored = await buckets.get_bucket(caller.owner)
            now = self.context.clock.now().timestamp()
            taken, state = quotas.take_token(stored, limit, now)
            if taken is None:
                raise quotas.rate_refused(state)
            if await buckets.save_bucket(caller.owner, taken, stored):
                return state
        # Every attempt lost to a concurrent request of this owner: it is busy enough.
        raise QuotaExceeded(LimitName.REQUESTS_PER_MINUTE, limit, limit, 1)

    async def check_new_job(self, caller: Caller) -> OwnerLoad:
        """The owner's load, once it is known to leave room for one more job."""
        now = self.context.clock.now()
        load = await self.context.store.owner_load(caller.owner, quotas.day_start(now))
        limits = caller.limits
        max_active = limits.max_active_jobs or self.context.settings.max_active_jobs_per_key
        quotas.check_new_job(load, max_active, limits.daily_video_seconds, now)
        return load
