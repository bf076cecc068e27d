"""The SQL job store on SQLite: the file itself, its connections and the D1 migrations.

What every JobStore must do is tested once for SQLite and D1 in tests/contracts_ports.
"""

import re
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from contracts import Quality
from edge_worker.adapters import job_rows
from edge_worker.adapters.local import sqlite_migrations
from edge_worker.adapters.local.sqlite_connection import open_sqlite
from edge_worker.adapters.local.sqlite_executor import SqliteExecutor
from edge_worker.adapters.local.sqlite_migrations import (
    MIGRATIONS_TABLE,
    apply_migrations,
    migrations_dir,
)
from edge_worker.adapters.sql_job_store import SqlJobStore
from edge_worker.domain import jobs
from tests.conftest import run
from tests.contracts_ports.test_job_store_contract import T0, completed, make_job


class OpenStore(SqlJobStore):
    """The SQL job store on its own connection to a SQLite file."""

    def __init__(self, path: Path, migrations: Path | None = None) -> None:
        self.database = SqliteExecutor(path, migrations)
        super().__init__(self.database)

    def close(self) -> None:
        self.database.close()


def test_times_are_stored_as_fixed_width_utc_text(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    store = OpenStore(path)
    whole_second = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    run(store.insert(make_job("job-text", created=whole_second)))
    store.close()
    with sqlite3.connect(path) as conn:
        created, updated = conn.execute(
            "SELECT created_at, updated_at FROM jobs WHERE id = 'job-text'"
        ).fetchone()
    assert created == updated == "2024-01-02T03:04:05.000000Z"


def test_two_writers_racing_on_separate_connections_only_one_wins(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    setup = OpenStore(path)
    ids = [f"race-{n}" for n in range(25)]
    for job_id in ids:
        run(setup.insert(make_job(job_id)))
    writers = [OpenStore(path), OpenStore(path)]
    results: dict[int, list[bool]] = {0: [], 1: []}
    barrier = threading.Barrier(2)

    errors: list[BaseException] = []

    def writer(index: int) -> None:
        own = writers[index]
        try:
            for job_id in ids:
                read = run(own.get(job_id))
                assert read is not None and read.version == 0
                mine = jobs.claim(read, agent_id=f"agent-{index}", claim_token=f"t{index}", now=T0)
                barrier.wait(timeout=10)
                results[index].append(run(own.replace(mine, read.version)))
                barrier.wait(timeout=10)
        except BaseException as exc:  # surfaced below: threads swallow exceptions
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=writer, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    for n, job_id in enumerate(ids):
        assert results[0][n] != results[1][n], job_id  # exactly one winner per job
        winner = 0 if results[0][n] else 1
        stored = run(setup.get(job_id))
        assert stored is not None
        assert stored.agent_id == f"agent-{winner}" and stored.version == 1
    for s in (setup, *writers):
        s.close()


# --- migrations --------------------------------------------------------------------------


def _recorded(conn: sqlite3.Connection) -> list[str]:
    names = f"SELECT name FROM {MIGRATIONS_TABLE} ORDER BY id"  # noqa: S608 - a constant table
    return [r[0] for r in conn.execute(names)]


def test_apply_migrations_in_order_once_and_records_them(tmp_path: Path) -> None:
    mdir = tmp_path / "migrations"
    mdir.mkdir()
    # Written out of order; 0002 depends on 0001 having run first.
    (mdir / "0002_add_column.sql").write_text("ALTER TABLE things ADD COLUMN colour TEXT;\n")
    (mdir / "0001_things.sql").write_text("CREATE TABLE things (id TEXT PRIMARY KEY);\n")
    (mdir / "README.sql").write_text("THIS IS NOT SQL;")
    (mdir / "0003_notes.txt").write_text("THIS IS NOT SQL EITHER;")
    (mdir / "003_short.sql").write_text("THIS IS NOT SQL EITHER;")

    conn = sqlite3.connect(tmp_path / "db.sqlite3", isolation_level=None)
    assert apply_migrations(conn, mdir) == ["0001_things.sql", "0002_add_column.sql"]
    assert _recorded(conn) == ["0001_things.sql", "0002_add_column.sql"]
    columns = [r[1] for r in conn.execute("PRAGMA table_info(things)")]
    assert columns == ["id", "colour"]
    applied_sql = f"SELECT applied_at FROM {MIGRATIONS_TABLE}"  # noqa: S608 - a constant table
    applied_at = conn.execute(applied_sql).fetchall()
    assert all(a[0] for a in applied_at)

    # Running again applies nothing (re-running 0002 would fail: duplicate column).
    assert apply_migrations(conn, mdir) == []

    # A new migration later is applied alone.
    (mdir / "0003_more.sql").write_text("CREATE INDEX things_colour ON things (colour);\n")
    assert apply_migrations(conn, mdir) == ["0003_more.sql"]
    assert _recorded(conn) == ["0001_things.sql", "0002_add_column.sql", "0003_more.sql"]
    conn.close()

    # A fresh connection to the same file sees them all as done.
    again = sqlite3.connect(tmp_path / "db.sqlite3", isolation_level=None)
    assert apply_migrations(again, mdir) == []
    again.close()


def test_apply_migrations_on_an_empty_directory(tmp_path: Path) -> None:
    conn = sqlite3.connect(":memory:")
    assert apply_migrations(conn, tmp_path) == []
    assert _recorded(conn) == []
    conn.close()


def test_failing_migration_is_not_recorded(tmp_path: Path) -> None:
    mdir = tmp_path / "m"
    mdir.mkdir()
    (mdir / "0001_ok.sql").write_text("CREATE TABLE ok (id INTEGER);")
    (mdir / "0002_bad.sql").write_text("CREATE TABLE broken (;")
    conn = sqlite3.connect(tmp_path / "db.sqlite3", isolation_level=None)
    with pytest.raises(sqlite3.OperationalError):
        apply_migrations(conn, mdir)
    assert _recorded(conn) == ["0001_ok.sql"]
    # Fixed, it is applied next time.
    (mdir / "0002_bad.sql").write_text("CREATE TABLE fixed (id INTEGER);")
    assert apply_migrations(conn, mdir) == ["0002_bad.sql"]
    conn.close()


def test_store_uses_a_custom_migrations_directory(tmp_path: Path) -> None:
    mdir = tmp_path / "m"
    mdir.mkdir()
    for src in migrations_dir().glob("*.sql"):
        (mdir / src.name).write_text(src.read_text())
    (mdir / "9999_extra.sql").write_text("CREATE TABLE extra (id INTEGER);")
    store = OpenStore(tmp_path / "db.sqlite3", migrations=mdir)
    run(store.insert(make_job("j")))
    assert run(store.get("j")) is not None
    store.close()
    with sqlite3.connect(tmp_path / "db.sqlite3") as conn:
        assert "9999_extra.sql" in _recorded(conn)


def test_reopening_the_store_does_not_reapply_migrations(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    first = OpenStore(path)
    job = completed(make_job("kept"), T0)
    run(first.insert(job))
    first.close()
    second = OpenStore(path)
    assert run(second.get("kept")) == job
    second.close()
    third = OpenStore(path)
    third.close()
    with sqlite3.connect(path) as conn:
        names = _recorded(conn)
        assert names == sorted(p.name for p in migrations_dir().glob("[0-9][0-9][0-9][0-9]_*.sql"))
        assert len(names) == len(set(names))
        assert apply_migrations(conn, migrations_dir()) == []
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_migrations_dir_is_the_repository_folder() -> None:
    here = migrations_dir()
    assert here.is_dir()
    assert here == Path(sqlite_migrations.__file__).resolve().parents[3] / "migrations"
    assert (here / "0001_create_jobs.sql").is_file()


def test_migrations_dir_falls_back_to_the_packaged_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_migrations.Path, "is_dir", lambda self: False)
    packaged = migrations_dir()
    assert packaged == Path(sqlite_migrations.__file__).resolve().parents[2] / "_migrations"


def test_real_migrations_create_exactly_the_columns_job_rows_uses(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "db.sqlite3", isolation_level=None)
    apply_migrations(conn, migrations_dir())
    columns = tuple(r[1] for r in conn.execute("PRAGMA table_info(jobs)"))
    assert sorted(columns) == sorted(job_rows.COLUMNS)
    indexes = {r[1] for r in conn.execute("PRAGMA index_list(jobs)")}
    assert {"jobs_owner_created", "jobs_status_created"} <= indexes
    conn.close()


def _statements(sql: str) -> list[str]:
    without_comments = "\n".join(line.split("--", 1)[0] for line in sql.splitlines())
    return [s.strip() for s in without_comments.split(";") if s.strip()]


_D1_STATEMENT = re.compile(
    r"^(CREATE\s+(TABLE|(UNIQUE\s+)?INDEX)\s+(IF\s+NOT\s+EXISTS\s+)?\w+"
    r"|ALTER\s+TABLE\s+\w+\s+ADD\s+COLUMN\s+\w+)",
    re.IGNORECASE,
)
_FORBIDDEN = re.compile(
    r"\b(PRAGMA|ATTACH|DETACH|BEGIN|COMMIT|ROLLBACK|SAVEPOINT|VACUUM)\b", re.IGNORECASE
)


@pytest.mark.parametrize(
    "path",
    sorted(migrations_dir().glob("*.sql")),
    ids=lambda p: p.name,
)
def test_real_migration_files_are_d1_compatible(path: Path) -> None:
    assert re.fullmatch(r"\d{4}_[a-z0-9_]+\.sql", path.name), "wrangler naming: NNNN_name.sql"
    sql = path.read_text()
    statements = _statements(sql)
    assert statements
    for statement in statements:
        assert _D1_STATEMENT.match(statement), statement
        assert not _FORBIDDEN.search(statement), statement
    # And it is valid SQLite: applies cleanly on top of the migrations before it.
    conn = sqlite3.connect(":memory:", isolation_level=None)
    for earlier in sorted(migrations_dir().glob("*.sql")):
        if earlier.name < path.name:
            conn.executescript(earlier.read_text())
    conn.executescript(sql)
    conn.close()


def test_d1_statement_check_rejects_what_d1_refuses() -> None:
    bad = "PRAGMA journal_mode=WAL; ATTACH DATABASE 'x' AS y; BEGIN; CREATE TABLE t (a);"
    verdicts = [bool(_D1_STATEMENT.match(s)) and not _FORBIDDEN.search(s) for s in _statements(bad)]
    assert verdicts == [False, False, False, True]


def test_a_failing_migration_leaves_nothing_half_applied(tmp_path: Path) -> None:
    mdir = tmp_path / "m"
    mdir.mkdir()
    (mdir / "0001_half.sql").write_text("CREATE TABLE first (id INTEGER);\nCREATE TABLE (;")
    conn = sqlite3.connect(tmp_path / "db.sqlite3", isolation_level=None)
    with pytest.raises(sqlite3.OperationalError):
        apply_migrations(conn, mdir)
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "first" not in tables
    assert not conn.in_transaction
    conn.close()


def test_migration_names_with_quotes_are_refused(tmp_path: Path) -> None:
    mdir = tmp_path / "m"
    mdir.mkdir()
    (mdir / "0001_it's.sql").write_text("CREATE TABLE t (id INTEGER);")
    conn = sqlite3.connect(tmp_path / "db.sqlite3", isolation_level=None)
    with pytest.raises(ValueError, match="quotes"):
        apply_migrations(conn, mdir)
    conn.close()


def test_jobs_made_before_the_quality_column_read_back_as_standard(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    older = tmp_path / "older"
    older.mkdir()
    for name in ("0001_create_jobs.sql", "0002_reliability.sql"):
        (older / name).write_text((migrations_dir() / name).read_text())
    conn = sqlite3.connect(path, isolation_level=None)
    apply_migrations(conn, older)
    row = dict(zip(job_rows.COLUMNS, job_rows.to_row(make_job("old")), strict=True))
    later_columns = ("quality", "image_etag", "audio_etag", "audio_seconds", "video_seconds")
    fanout_columns = ("parallel", "parent_id", "task", "segment_index", "segment_count")
    dubbing_columns = ("video_key", "video_etag", "audio2_key", "audio2_etag", "speaker_mode")
    dubbing_columns += ("speaker_boxes", "speakers_json", "refusals")
    for later in (
        *later_columns,
        "gpu_seconds",
        "engine",
        *fanout_columns,
        "webhook_url",
        "webhook_events",
        *dubbing_columns,
    ):
        del row[later]
    for later in ("segment_start_seconds", "segment_end_seconds", "segment_plan"):
        del row[later]
    conn.execute(
        f"INSERT INTO jobs ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})",  # noqa: S608 - job_rows' columns
        tuple(row.values()),
    )
    conn.close()
    store = OpenStore(path)  # applies 0003 and later on top
    got = run(store.get("old"))
    store.close()
    assert got is not None and got.quality is Quality.STANDARD
    assert got.image_etag is got.audio_etag is None  # nothing recorded, nothing checked
    assert got.audio_seconds is None  # not metered before 0006
    assert (got.parallel, got.task, got.parent_id) == ("off", "job", None)  # 0009's defaults
    assert got.video_key is got.speakers is None and got.refusals == 0  # an image job (0010)


def test_files_are_opened_in_wal_mode_without_an_fsync_per_commit(tmp_path: Path) -> None:
    conn = open_sqlite(tmp_path / "any.sqlite3")
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
        assert conn.execute("PRAGMA busy_timeout").fetchone() == (5000,)
    finally:
        conn.close()
