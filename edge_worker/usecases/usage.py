"""Usage reports: `GET /usage` for the calling tenant, and across keys for operators
(`GET /admin/usage`, `avatar-admin usage`)."""

from contracts import AdminUsageReport, ErrorCode, KeyUsageBucket, UsageBucket, UsageReport
from edge_worker.domain.problems import Problem
from edge_worker.domain.usage import UsagePeriod, UsageRow, parse_period
from edge_worker.ports import Clock, JobStore, KeyStore


def _bucket(row: UsageRow) -> UsageBucket:
    return UsageBucket(
        day=row.day,
        quality=row.quality,
        jobs_created=row.jobs_created,
        jobs_completed=row.jobs_completed,
        jobs_failed=row.jobs_failed,
        audio_seconds=row.audio_seconds,
        video_seconds=row.video_seconds,
        gpu_seconds=row.gpu_seconds,
    )


class Usage:
    """Built around the two stores alone, so `avatar-admin` can run it on the local database
    without the rest of the edge."""

    def __init__(self, jobs: JobStore, keys: KeyStore, clock: Clock) -> None:
        self._jobs = jobs
        self._keys = keys
        self._clock = clock

    def period(self, first: str | None, last: str | None) -> UsagePeriod:
        return parse_period(first, last, self._clock.now().date())

    async def for_owner(self, owner: str, first: str | None, last: str | None) -> UsageReport:
        period = self.period(first, last)
        rows = await self._jobs.usage(period, owner)
        return UsageReport(
            first_day=period.first, last_day=period.last, buckets=[_bucket(row) for row in rows]
        )

    async def across_keys(
        self, first: str | None, last: str | None, key_id: str | None = None
    ) -> AdminUsageReport:
        """Every owner's buckets, or only `key_id`'s; an owner without a stored key is one of
        API_KEYS (no id, no name)."""
        period = self.period(first, last)
        if key_id is None:
            keys = {key.owner: key for key in await self._keys.list_all()}
            rows = await self._jobs.usage(period)
        else:
            key = await self._keys.get(key_id)
            if key is None:
                raise Problem(ErrorCode.NOT_FOUND, f"no API key {key_id!r}")
            keys = {key.owner: key}
            rows = await self._jobs.usage(period, key.owner)
        buckets = []
        for row in rows:
            key = keys.get(row.owner)
            buckets.append(
                KeyUsageBucket(
                    **_bucket(row).model_dump(),
                    owner=row.owner,
                    key_id=key.id if key else None,
                    key_name=key.name if key else None,
                )
            )
        return AdminUsageReport(first_day=period.first, last_day=period.last, buckets=buckets)
