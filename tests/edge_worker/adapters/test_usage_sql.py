"""The usage query reads an index range, not the whole jobs table (SQLite's plan; D1 is
SQLite too)."""

import sqlite3
from pathlib import Path

import pytest

from edge_worker.adapters import job_rows
from edge_worker.adapters.local.sqlite_migrations import apply_migrations, migrations_dir


@pytest.mark.parametrize(
    ("one_owner", "index"), [(True, "jobs_owner_created"), (False, "jobs_created")]
)
def test_usage_is_an_index_range(tmp_path: Path, one_owner: bool, index: str) -> None:
    conn = sqlite3.connect(tmp_path / "jobs.sqlite3", isolation_level=None)
    try:
        apply_migrations(conn, migrations_dir())
        params = ("owner", "a", "b") if one_owner else ("a", "b")
        sql = f"EXPLAIN QUERY PLAN {job_rows.usage_sql(one_owner=one_owner)}"
        plan = " ".join(row[3] for row in conn.execute(sql, params))
    finally:
        conn.close()
    assert plan.startswith(f"SEARCH jobs USING INDEX {index} ("), plan
    assert "SCAN" not in plan, plan
