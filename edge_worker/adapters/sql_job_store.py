"""`SqlJobStore`: the JobStore port in SQL, once for D1 and SQLite; only the executor differs.

Every port call is one statement, so each runs atomically on either database: a state
change is one conditional UPDATE (`... WHERE id = ? AND version = ?`) whose changed-row count
says whether the compare-and-swap won, and an idempotency key is claimed by one
`INSERT OR IGNORE`.
"""

from datetime import datetime
from typing import Any, Protocol

from contracts import JobStatus
from edge_worker.adapters import job_rows
from edge_worker.domain import admission
from edge_worker.domain.idempotency import IdempotencyRecord
from edge_worker.domain.jobs import Job
from edge_worker.domain.quotas import OwnerLoad
from edge_worker.domain.usage import UsagePeriod, UsageRow
from edge_worker.ports import JobPage, SweepKind

Params = tuple[Any, ...]


class SqlExecutor(Protocol):
    """Runs one statement on a database; rows come back as dicts with None for NULL."""

    async def rows(self, sql: str, params: Params) -> list[dict[str, Any]]: ...

    async def first(self, sql: str, params: Params) -> dict[str, Any] | None: ...

    async def execute(self, sql: str, params: Params) -> int:
        """Run a statement that writes; the number of rows it changed."""
        ...


class SqlJobStore:
    def __init__(self, db: SqlExecutor) -> None:
        self._db = db

    async def insert(self, job: Job) -> None:
        await self._db.execute(job_rows.INSERT_SQL, job_rows.to_row(job))

    async def get(self, job_id: str) -> Job | None:
        found = await self._db.first(job_rows.GET_SQL, (job_id,))
        return job_rows.from_row(found) if found else None

    async def insert_child(self, job: Job) -> bool:
        return await self._db.execute(job_rows.INSERT_CHILD_SQL, job_rows.to_row(job)) == 1

    async def children(self, parent_id: str) -> list[Job]:
        return [
            job_rows.from_row(row)
            for row in await self._db.rows(job_rows.CHILDREN_SQL, (parent_id,))
        ]

    async def agents_seen(self, since: datetime) -> int:
        found = await self._db.first(job_rows.AGENTS_SEEN_SQL, (job_rows.format_time(since),))
        return int(found["agents"]) if found else 0

    async def replace(self, job: Job, expected_version: int) -> bool:
        params = job_rows.replace_params(job, expected_version)
        return await self._db.execute(job_rows.REPLACE_SQL, params) == 1

    async def count_pending_before(self, job: Job) -> int:
        if job.enqueued_at is not None:
            enqueued = job_rows.format_time(job.enqueued_at)
            params = (enqueued, enqueued, job.id)
            found = await self._db.first(job_rows.COUNT_QUEUED_BEFORE_SQL, params)
            return int(found["ahead"]) if found else 0
        created = job_rows.format_time(job.created_at)
        held_params = (job.owner, created, job.owner, created, job.id)
        counts = await self._db.first(job_rows.COUNT_BEFORE_HELD_SQL, held_params)
        assert counts is not None, "a SELECT of subqueries has one row"
        held_rows = await self._db.rows(job_rows.HELD_PER_OWNER_SQL, ())
        held = {row["owner"]: int(row["held"]) for row in held_rows}
        return admission.jobs_ahead(int(counts["queued"]), int(counts["own_held"]), held, job.owner)

    async def owner_load(self, owner: str, since: datetime) -> OwnerLoad:
        params = (owner, owner, owner, job_rows.format_time(since))
        found = await self._db.first(job_rows.OWNER_LOAD_SQL, params)
        assert found is not None, "a SELECT of subqueries has one row"
        return OwnerLoad(
            active=int(found["active"]),
            queued=int(found["queued"]),
            video_seconds=float(found["video_seconds"]),
        )

    async def held_jobs(self, owner: str, limit: int) -> list[Job]:
        rows = await self._db.rows(job_rows.HELD_JOBS_SQL, (owner, limit))
        return [job_rows.from_row(row) for row in rows]

    async def owners_with_held(self, limit: int) -> list[str]:
        rows = await self._db.rows(job_rows.OWNERS_WITH_HELD_SQL, (limit,))
        return [row["owner"] for row in rows]

    async def list_for_owner(
        self,
        owner: str,
        limit: int,
        cursor: str | None,
        statuses: frozenset[JobStatus] = frozenset(),
    ) -> JobPage:
        after = job_rows.decode_cursor(cursor) if cursor is not None else None
        wanted = sorted(status.value for status in statuses)
        sql = job_rows.list_for_owner_sql(statuses=len(wanted), after_cursor=after is not None)
        keyset = (after[0], after[0], after[1]) if after is not None else ()
        rows = await self._db.rows(sql, (owner, *wanted, *keyset, limit + 1))
        found = [job_rows.from_row(row) for row in rows]
        page = found[:limit]
        next_cursor = job_rows.encode_cursor(page[-1]) if len(found) > limit else None
        return JobPage(jobs=page, next_cursor=next_cursor)

    async def find_for_sweep(self, kind: SweepKind, cutoff: datetime, limit: int) -> list[Job]:
        rows = await self._db.rows(job_rows.SWEEP_SQL[kind], (job_rows.format_time(cutoff), limit))
        return [job_rows.from_row(row) for row in rows]

    async def input_keys_in_use(self, keys: list[str]) -> set[str]:
        used: set[str] = set()
        for start in range(0, len(keys), job_rows.KEYS_PER_QUERY):
            batch = keys[start : start + job_rows.KEYS_PER_QUERY]
            params = tuple(batch) * len(job_rows.INPUT_KEY_COLUMNS)
            rows = await self._db.rows(job_rows.keys_in_use_sql(len(batch)), params)
            used.update(row[column] for row in rows for column in job_rows.INPUT_KEY_COLUMNS)
        return {key for key in used & set(keys) if key}  # a video job's image_key is empty

    async def usage(self, period: UsagePeriod, owner: str | None = None) -> list[UsageRow]:
        bounds = (job_rows.format_time(period.start), job_rows.format_time(period.end))
        sql = job_rows.usage_sql(one_owner=owner is not None)
        rows = await self._db.rows(sql, bounds if owner is None else (owner, *bounds))
        return [job_rows.usage_from_row(row) for row in rows]

    async def get_idempotency(self, owner: str, key: str) -> IdempotencyRecord | None:
        found = await self._db.first(job_rows.IDEMPOTENCY_GET_SQL, (owner, key))
        return job_rows.idempotency_from_row(found) if found else None

    async def insert_idempotency(self, record: IdempotencyRecord) -> bool:
        params = job_rows.idempotency_to_row(record)
        return await self._db.execute(job_rows.IDEMPOTENCY_INSERT_SQL, params) == 1

    async def finish_idempotency(self, record: IdempotencyRecord, job_id: str) -> bool:
        params = (job_id, record.owner, record.key, record.fingerprint)
        return await self._db.execute(job_rows.IDEMPOTENCY_FINISH_SQL, params) == 1

    async def delete_idempotency(self, record: IdempotencyRecord) -> None:
        params = (record.owner, record.key, job_rows.format_time(record.created_at))
        await self._db.execute(job_rows.IDEMPOTENCY_DELETE_SQL, params)

    async def purge_idempotency(self, before: datetime) -> int:
        params = (job_rows.format_time(before),)
        return await self._db.execute(job_rows.IDEMPOTENCY_PURGE_SQL, params)
