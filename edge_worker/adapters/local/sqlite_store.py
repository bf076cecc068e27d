"""`SqliteJobStore`: the JobStore port on a SQLite file, using the D1 migrations."""

import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

from edge_worker import job_rows
from edge_worker.idempotency import IdempotencyRecord
from edge_worker.job_rows import SweepKind
from edge_worker.jobs import Job
from edge_worker.ports import JobPage

MIGRATIONS_TABLE = "d1_migrations"


def migrations_dir() -> Path:
    """The repository's `migrations/` in a checkout, the packaged copy when installed."""
    here = Path(__file__).resolve().parents[3] / "migrations"
    return here if here.is_dir() else Path(__file__).resolve().parents[2] / "_migrations"


def apply_migrations(conn: sqlite3.Connection, directory: Path) -> list[str]:
    """Apply pending `NNNN_*.sql` files in order, tracked like wrangler does (`d1_migrations`)."""
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} ("
        "id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE, "
        "applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL)"
    )
    done = {row[0] for row in conn.execute(f"SELECT name FROM {MIGRATIONS_TABLE}")}
    applied = []
    for path in sorted(directory.glob("[0-9][0-9][0-9][0-9]_*.sql")):
        if "'" in path.name:
            raise ValueError(f"migration file name must not contain quotes: {path.name}")
        if path.name in done:
            continue
        # One transaction per file: a failing migration leaves nothing half-applied.
        record = f"INSERT INTO {MIGRATIONS_TABLE} (name) VALUES ('{path.name}');"
        try:
            conn.executescript(f"BEGIN;\n{path.read_text()}\n{record}\nCOMMIT;")
        except sqlite3.Error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        applied.append(path.name)
    return applied


class SqliteJobStore:
    """Blocking calls are short single-row statements on a local file; the event loop
    tolerates them, and WAL mode lets several edge processes share the file."""

    def __init__(self, path: Path, migrations: Path | None = None) -> None:
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA busy_timeout=5000")
        apply_migrations(self._conn, migrations or migrations_dir())

    def close(self) -> None:
        self._conn.close()

    def _rows(self, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        return [dict(row) for row in self._conn.execute(sql, params)]

    async def insert(self, job: Job) -> None:
        self._conn.execute(job_rows.INSERT_SQL, job_rows.to_row(job))

    async def get(self, job_id: str) -> Job | None:
        rows = self._rows(f"{job_rows.SELECT_SQL} WHERE id = ?", (job_id,))
        return job_rows.from_row(rows[0]) if rows else None

    async def replace(self, job: Job, expected_version: int) -> bool:
        cursor = self._conn.execute(
            job_rows.REPLACE_SQL, job_rows.replace_params(job, expected_version)
        )
        return cursor.rowcount == 1

    async def count_pending_before(self, job: Job) -> int:
        created = job_rows.format_time(job.created_at)
        row = self._conn.execute(
            job_rows.COUNT_PENDING_BEFORE_SQL, (created, created, job.id)
        ).fetchone()
        return int(row[0])

    async def list_for_owner(self, owner: str, limit: int, cursor: str | None) -> JobPage:
        if cursor is None:
            rows = self._rows(job_rows.LIST_FOR_OWNER_SQL, (owner, limit + 1))
        else:
            created, job_id = job_rows.decode_cursor(cursor)
            rows = self._rows(
                job_rows.LIST_FOR_OWNER_AFTER_SQL, (owner, created, created, job_id, limit + 1)
            )
        found = [job_rows.from_row(row) for row in rows]
        page = found[:limit]
        next_cursor = job_rows.encode_cursor(page[-1]) if len(found) > limit else None
        return JobPage(jobs=page, next_cursor=next_cursor)

    async def find_for_sweep(self, kind: SweepKind, cutoff: datetime, limit: int) -> list[Job]:
        rows = self._rows(job_rows.SWEEP_SQL[kind], (job_rows.format_time(cutoff), limit))
        return [job_rows.from_row(row) for row in rows]

    async def get_idempotency(self, owner: str, key: str) -> IdempotencyRecord | None:
        rows = self._rows(job_rows.IDEMPOTENCY_GET_SQL, (owner, key))
        return job_rows.idempotency_from_row(rows[0]) if rows else None

    async def insert_idempotency(self, record: IdempotencyRecord) -> bool:
        cursor = self._conn.execute(
            job_rows.IDEMPOTENCY_INSERT_SQL, job_rows.idempotency_to_row(record)
        )
        return cursor.rowcount == 1

    async def finish_idempotency(self, record: IdempotencyRecord, job_id: str) -> bool:
        cursor = self._conn.execute(
            job_rows.IDEMPOTENCY_FINISH_SQL,
            (job_id, record.owner, record.key, record.fingerprint),
        )
        return cursor.rowcount == 1

    async def delete_idempotency(self, record: IdempotencyRecord) -> None:
        self._conn.execute(
            job_rows.IDEMPOTENCY_DELETE_SQL,
            (record.owner, record.key, job_rows.format_time(record.created_at)),
        )

    async def purge_idempotency(self, before: datetime) -> int:
        cursor = self._conn.execute(job_rows.IDEMPOTENCY_PURGE_SQL, (job_rows.format_time(before),))
        return cursor.rowcount
