"""`SqliteExecutor`: the SQL job store's executor on a SQLite file, with the D1 migrations."""

import sqlite3
from pathlib import Path
from typing import Any

from edge_worker.adapters.local.sqlite_connection import open_sqlite
from edge_worker.adapters.local.sqlite_migrations import apply_migrations, migrations_dir
from edge_worker.adapters.sql_job_store import Params


def _dict_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> dict[str, Any]:
    """Rows straight as the dicts the store reads: a third cheaper than `dict(sqlite3.Row)`."""
    return dict(zip([column[0] for column in cursor.description], row, strict=True))


class SqliteExecutor:
    """Blocking calls are short single-row statements on a local file; the event loop
    tolerates them."""

    def __init__(self, path: Path, migrations: Path | None = None) -> None:
        self._conn = open_sqlite(path)
        apply_migrations(self._conn, migrations or migrations_dir())
        self._conn.row_factory = _dict_row

    def close(self) -> None:
        self._conn.close()

    async def rows(self, sql: str, params: Params) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._conn.execute(sql, params).fetchall()
        return found

    async def first(self, sql: str, params: Params) -> dict[str, Any] | None:
        found: dict[str, Any] | None = self._conn.execute(sql, params).fetchone()
        return found

    async def execute(self, sql: str, params: Params) -> int:
        return self._conn.execute(sql, params).rowcount
