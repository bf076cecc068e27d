"""`D1JobStore`: the JobStore port on a D1 binding, with the SQL the local store runs.

Every port call is one statement, so D1 runs each atomically and no `batch()` is needed:
a state change is one conditional UPDATE (`... WHERE id = ? AND version = ?`) whose
`meta.changes` says whether the compare-and-swap won, and an idempotency key is claimed by
one `INSERT OR IGNORE`. Queries go through the binding itself rather than a D1 session, so
they reach the primary database and read their own writes.
"""

from datetime import datetime
from typing import Any

from edge_worker import job_rows
from edge_worker.adapters.cloudflare.js_values import field, row
from edge_worker.idempotency import IdempotencyRecord
from edge_worker.job_rows import SweepKind
from edge_worker.jobs import Job
from edge_worker.ports import JobPage


class D1JobStore:
    def __init__(self, db: Any) -> None:
        self._db = db

    def _statement(self, sql: str, params: tuple[Any, ...]) -> Any:
        return self._db.prepare(sql).bind(*params)

    async def _rows(self, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        result = await self._statement(sql, params).all()
        return [row(item) for item in field(result, "results") or []]

    async def _first(self, sql: str, params: tuple[Any, ...]) -> dict[str, Any] | None:
        found = await self._statement(sql, params).first()
        return None if found is None else row(found)

    async def _changes(self, sql: str, params: tuple[Any, ...]) -> int:
        result = await self._statement(sql, params).run()
        return int(field(field(result, "meta"), "changes") or 0)

    async def insert(self, job: Job) -> None:
        await self._statement(job_rows.INSERT_SQL, job_rows.to_row(job)).run()

    async def get(self, job_id: str) -> Job | None:
        found = await self._first(f"{job_rows.SELECT_SQL} WHERE id = ?", (job_id,))
        return job_rows.from_row(found) if found else None

    async def replace(self, job: Job, expected_version: int) -> bool:
        params = job_rows.replace_params(job, expected_version)
        return await self._changes(job_rows.REPLACE_SQL, params) == 1

    async def count_pending_before(self, job: Job) -> int:
        created = job_rows.format_time(job.created_at)
        found = await self._first(job_rows.COUNT_PENDING_BEFORE_SQL, (created, created, job.id))
        return int(next(iter(found.values()))) if found else 0

    async def list_for_owner(self, owner: str, limit: int, cursor: str | None) -> JobPage:
        if cursor is None:
            rows = await self._rows(job_rows.LIST_FOR_OWNER_SQL, (owner, limit + 1))
        else:
            created, job_id = job_rows.decode_cursor(cursor)
            rows = await self._rows(
                job_rows.LIST_FOR_OWNER_AFTER_SQL, (owner, created, created, job_id, limit + 1)
            )
        found = [job_rows.from_row(item) for item in rows]
        page = found[:limit]
        next_cursor = job_rows.encode_cursor(page[-1]) if len(found) > limit else None
        return JobPage(jobs=page, next_cursor=next_cursor)

    async def find_for_sweep(self, kind: SweepKind, cutoff: datetime, limit: int) -> list[Job]:
        rows = await self._rows(job_rows.SWEEP_SQL[kind], (job_rows.format_time(cutoff), limit))
        return [job_rows.from_row(item) for item in rows]

    async def get_idempotency(self, owner: str, key: str) -> IdempotencyRecord | None:
        found = await self._first(job_rows.IDEMPOTENCY_GET_SQL, (owner, key))
        return job_rows.idempotency_from_row(found) if found else None

    async def insert_idempotency(self, record: IdempotencyRecord) -> bool:
        params = job_rows.idempotency_to_row(record)
        return await self._changes(job_rows.IDEMPOTENCY_INSERT_SQL, params) == 1

    async def finish_idempotency(self, record: IdempotencyRecord, job_id: str) -> bool:
        params = (job_id, record.owner, record.key, record.fingerprint)
        return await self._changes(job_rows.IDEMPOTENCY_FINISH_SQL, params) == 1

    async def delete_idempotency(self, record: IdempotencyRecord) -> None:
        params = (record.owner, record.key, job_rows.format_time(record.created_at))
        await self._changes(job_rows.IDEMPOTENCY_DELETE_SQL, params)

    async def purge_idempotency(self, before: datetime) -> int:
        return await self._changes(job_rows.IDEMPOTENCY_PURGE_SQL, (job_rows.format_time(before),))
