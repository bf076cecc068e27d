"""`SqliteExecutor`: the SQL job store's executor on a SQLite file, with the D1 migrations."""

import sqlite3
from pathlib import Path
from typing import Any

from edge_worker.adapters.local.sqlite_connection import open_sqlite
from edge_worker.adapters.local.sqlite_migrations import apply_migrations, migrations_dir
from edge_worker.adapters.sql_job_store import Params


class SqliteExecutor:
    """Blocking calls are short single-row statements on a local file; the event loop
    tolerates them."""

    def __init__(self, path: Path, migrations: Path | None = None) -> None:
        self._conn = open_sqlite(path)
        self._conn.row_factory = sqlite3.Row
        apply_migrations(self._conn, migrations or migrations_dir())

    def close(self) -> None:
        self._conn.close()

    async def rows(self, sql: str, params: Params) -> list[dict[str, Any]]:
        return [dict(row) for row in self._conn.execute(sql, params)]

    async def first(self, sql: str, params: Params) -> dict[str, Any] | None:
        found = self._conn.execute(sql, params).fetchone()
        return None if found is None else dict(found)

    async def execute(self, sql: str, params: Params) -> int:
        return self._conn.execute(sql, params).rowcount
