"""SqliteJobStore + job_rows + the D1 migrations, on real SQLite files under tmp_path."""

import asyncio
import base64
import dataclasses
import re
import sqlite3
import threading
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

import pytest

from contracts import FailureCode, JobStatus, Quality, Resolution, ResultMetadata, Stage
from edge_worker import job_rows, jobs
from edge_worker.adapters.local import sqlite_store
from edge_worker.adapters.local.sqlite_store import (
    MIGRATIONS_TABLE,
    SqliteJobStore,
    apply_migrations,
    migrations_dir,
)
from edge_worker.jobs import Job

T = TypeVar("T")
T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
RESULT = ResultMetadata(
    size_bytes=1_234_567, duration_seconds=61.04, width=1280, height=720, engine="preview"
)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def make_job(
    job_id: str, *, owner: str = "owner-a", created: datetime = T0, seed: int | None = 7
) -> Job:
    return jobs.new_job(
        job_id=job_id,
        owner=owner,
        prompt="a person talking, soft light",
        resolution=Resolution.P480,
        seed=seed,
        image_key=f"inputs/{job_id}/image.png",
        audio_key=f"inputs/{job_id}/audio.wav",
        now=created,
    )


def completed_job(job_id: str) -> Job:
    job = make_job(job_id)
    job = jobs.claim(job, agent_id="agent-1", claim_token="tok-1", now=T0 + timedelta(seconds=1))
    job = jobs.report_progress(
        job,
        claim_token="tok-1",
        progress=42.5,
        stage=Stage.GENERATING,
        eta_seconds=12.25,
        now=T0 + timedelta(seconds=2, microseconds=7),
    )
    return jobs.complete(
        job,
        claim_token="tok-1",
        result=RESULT,
        result_key=f"videos/{job_id}.mp4",
        now=T0 + timedelta(seconds=30, microseconds=999_999),
        retention=timedelta(hours=6),
    )


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = SqliteJobStore(tmp_path / "jobs.sqlite3")
    yield s
    s.close()


# --- insert / get round trip -------------------------------------------------------------


def test_new_pending_job_round_trips(store: SqliteJobStore) -> None:
    job = make_job("job-pending")
    run(store.insert(job))
    got = run(store.get("job-pending"))
    assert got == job
    assert got is not None
    assert got.status is JobStatus.PENDING
    assert got.stage is Stage.QUEUED
    assert got.resolution is Resolution.P480
    assert got.started_at is None and got.completed_at is None
    assert got.expires_at is None and got.heartbeat_at is None
    assert got.result is None and got.error_code is None
    assert got.version == 0


def test_completed_job_round_trips_result_and_every_timestamp(store: SqliteJobStore) -> None:
    job = completed_job("job-done")
    assert job.result == RESULT and job.expires_at is not None
    run(store.insert(job))
    got = run(store.get("job-done"))
    assert got == job
    assert got is not None
    assert isinstance(got.result, ResultMetadata)
    assert got.result == RESULT
    assert got.result_key == "videos/job-done.mp4"
    assert got.claim_token == "tok-1" and got.agent_id == "agent-1"  # kept: repeats are no-ops
    assert got.progress == 100.0 and got.eta_seconds == 0.0
    assert got.attempts == 1 and got.version == job.version == 3
    for name in job_rows._TIMES:
        stamp = getattr(got, name)
        assert stamp == getattr(job, name), name
        assert stamp.tzinfo is not None and stamp.utcoffset() == timedelta(0), name
    assert got.created_at.microsecond == 123456
    assert got.completed_at == T0 + timedelta(seconds=30, microseconds=999_999)
    assert got.expires_at == got.completed_at + timedelta(hours=6)


def test_failed_job_round_trips_error_fields(store: SqliteJobStore) -> None:
    job = jobs.claim(make_job("job-failed"), agent_id="a", claim_token="c", now=T0)
    job = jobs.fail(
        job,
        claim_token="c",
        code=FailureCode.GPU_OUT_OF_MEMORY,
        message="CUDA out of memory",
        retryable=False,
        max_attempts=3,
        now=T0 + timedelta(minutes=1),
    )
    run(store.insert(job))
    got = run(store.get("job-failed"))
    assert got == job
    assert got is not None
    assert got.status is JobStatus.FAILED
    assert got.error_code is FailureCode.GPU_OUT_OF_MEMORY
    assert got.error_message == "CUDA out of memory"


def test_every_field_set_to_a_non_default_value_round_trips(store: SqliteJobStore) -> None:
    job = Job(
        id="job-all",
        owner="owner-x",
        status=JobStatus.PROCESSING,
        stage=Stage.ENCODING,
        progress=73.125,
        prompt="unicode ✓ prompt with 'quotes' and \"double\" and ; -- sql-ish",
        resolution=Resolution.P720,
        seed=2**40 + 3,
        image_key="inputs/job-all/image.jpg",
        audio_key="inputs/job-all/audio.mp3",
        created_at=T0,
        updated_at=T0 + timedelta(microseconds=1),
        quality=Quality.FAST,
        started_at=T0 + timedelta(microseconds=2),
        completed_at=T0 + timedelta(microseconds=3),
        expires_at=T0 + timedelta(hours=6, microseconds=4),
        heartbeat_at=T0 + timedelta(microseconds=5),
        attempts=2,
        error_code=FailureCode.TIMEOUT,
        error_message="previous attempt timed out",
        claim_token="claim-xyz",
        agent_id="agent-7",
        eta_seconds=4.5,
        result_key="videos/job-all.mp4",
        result=RESULT,
        enqueued_at=T0 + timedelta(microseconds=6),
        inputs_deleted=True,
        version=9,
    )
    # Every field differs from its dataclass default, so a dropped column cannot hide.
    for field in dataclasses.fields(Job):
        if field.default is not dataclasses.MISSING:
            assert getattr(job, field.name) != field.default, field.name
    run(store.insert(job))
    assert run(store.get("job-all")) == job


def test_non_utc_datetimes_are_stored_as_utc_and_read_back_equal(store: SqliteJobStore) -> None:
    ist = timezone(timedelta(hours=5, minutes=30))
    local = datetime(2024, 5, 1, 17, 30, 0, 5, tzinfo=ist)
    job = make_job("job-tz", created=local)
    run(store.insert(job))
    got = run(store.get("job-tz"))
    assert got is not None
    assert got.created_at == local
    assert got.created_at.tzinfo == UTC
    assert got.created_at == datetime(2024, 5, 1, 12, 0, 0, 5, tzinfo=UTC)


def test_seed_none_round_trips(store: SqliteJobStore) -> None:
    job = make_job("job-noseed", seed=None)
    run(store.insert(job))
    got = run(store.get("job-noseed"))
    assert got is not None and got.seed is None


def test_times_are_stored_as_fixed_width_utc_text(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    store = SqliteJobStore(path)
    whole_second = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    run(store.insert(make_job("job-text", created=whole_second)))
    store.close()
    with sqlite3.connect(path) as conn:
        created, updated = conn.execute(
            "SELECT created_at, updated_at FROM jobs WHERE id = 'job-text'"
        ).fetchone()
    assert created == updated == "2024-01-02T03:04:05.000000Z"


def test_format_and_parse_time_keep_microseconds_and_order() -> None:
    stamps = [T0 + timedelta(microseconds=n) for n in (0, 1, 10, 999_999, 1_000_000)]
    texts = [job_rows.format_time(s) for s in stamps]
    assert [job_rows.parse_time(t) for t in texts] == stamps
    assert texts == sorted(texts)
    assert len({len(t) for t in texts}) == 1


def test_get_unknown_returns_none(store: SqliteJobStore) -> None:
    assert run(store.get("no-such-job")) is None
    run(store.insert(make_job("job-1")))
    assert run(store.get("no-such-job")) is None


def test_duplicate_insert_is_refused_and_keeps_the_original(store: SqliteJobStore) -> None:
    run(store.insert(make_job("job-dup", owner="first")))
    with pytest.raises(sqlite3.IntegrityError):
        run(store.insert(make_job("job-dup", owner="second")))
    got = run(store.get("job-dup"))
    assert got is not None and got.owner == "first"


# --- compare-and-swap replace --------------------------------------------------------------


def test_replace_succeeds_once_with_the_expected_version(store: SqliteJobStore) -> None:
    job = make_job("job-cas")
    run(store.insert(job))
    claimed = jobs.claim(job, agent_id="a1", claim_token="t1", now=T0 + timedelta(seconds=1))
    assert claimed.version == 1
    assert run(store.replace(claimed, 0)) is True
    assert run(store.get("job-cas")) == claimed

    # A second writer that also read version 0 loses.
    rival = jobs.claim(job, agent_id="a2", claim_token="t2", now=T0 + timedelta(seconds=2))
    assert run(store.replace(rival, 0)) is False
    assert run(store.get("job-cas")) == claimed

    # The next transition from the stored version wins.
    done = jobs.complete(
        claimed,
        claim_token="t1",
        result=RESULT,
        result_key="videos/job-cas.mp4",
        now=T0 + timedelta(seconds=3),
        retention=timedelta(hours=6),
    )
    assert run(store.replace(done, claimed.version)) is True
    assert run(store.get("job-cas")) == done
    # Replaying the same write with its now-stale expected version fails.
    assert run(store.replace(done, claimed.version)) is False


def test_replace_with_a_future_version_fails(store: SqliteJobStore) -> None:
    job = make_job("job-future")
    run(store.insert(job))
    claimed = jobs.claim(job, agent_id="a", claim_token="t", now=T0)
    assert run(store.replace(claimed, 5)) is False
    assert run(store.get("job-future")) == job


def test_replace_unknown_job_fails(store: SqliteJobStore) -> None:
    ghost = jobs.claim(make_job("ghost"), agent_id="a", claim_token="t", now=T0)
    assert run(store.replace(ghost, 0)) is False
    assert run(store.get("ghost")) is None


def test_replace_only_touches_the_target_row(store: SqliteJobStore) -> None:
    a, b = make_job("job-a"), make_job("job-b")
    run(store.insert(a))
    run(store.insert(b))
    assert run(store.replace(jobs.claim(a, agent_id="x", claim_token="y", now=T0), 0))
    assert run(store.get("job-b")) == b


def test_two_writers_racing_on_separate_connections_only_one_wins(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    setup = SqliteJobStore(path)
    ids = [f"race-{n}" for n in range(25)]
    for job_id in ids:
        run(setup.insert(make_job(job_id)))
    writers = [SqliteJobStore(path), SqliteJobStore(path)]
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


# --- queue position ----------------------------------------------------------------------


def test_count_pending_before_is_fifo_by_created_at_then_id(store: SqliteJobStore) -> None:
    same = T0 + timedelta(seconds=5)
    order = [
        make_job("z-first", created=T0),
        make_job("a-second", created=T0 + timedelta(microseconds=1)),
        make_job("m-tie-1", created=same),
        make_job("m-tie-2", created=same),
        make_job("b-last", created=T0 + timedelta(minutes=1)),
    ]
    for job in reversed(order):
        run(store.insert(job))
    assert [run(store.count_pending_before(j)) for j in order] == [0, 1, 2, 3, 4]


def test_count_pending_before_ignores_non_pending_and_counts_every_owner(
    store: SqliteJobStore,
) -> None:
    early = [make_job(f"early-{n}", created=T0 + timedelta(seconds=n)) for n in range(5)]
    for job in early:
        run(store.insert(job))
    # One processing, one completed, one failed: none of them waits in the queue.
    processing = jobs.claim(early[0], agent_id="a", claim_token="c0", now=T0)
    assert run(store.replace(processing, 0))
    run(store.insert(completed_job("done-early")))  # created at T0: before everything
    failing = jobs.claim(early[1], agent_id="a", claim_token="c1", now=T0)
    failed = jobs.fail(
        failing,
        claim_token="c1",
        code=FailureCode.GENERATION_FAILED,
        message="boom",
        retryable=False,
        max_attempts=3,
        now=T0,
    )
    assert run(store.replace(failed, 0))
    run(store.insert(make_job("other-owner", owner="owner-b", created=T0 + timedelta(seconds=3))))

    me = make_job("me", created=T0 + timedelta(minutes=1))
    run(store.insert(me))
    # early-2, early-3, other-owner (shares the one queue), early-4
    assert run(store.count_pending_before(me)) == 4
    assert run(store.count_pending_before(early[2])) == 0


def test_count_pending_before_for_a_job_not_in_the_store(store: SqliteJobStore) -> None:
    run(store.insert(make_job("j1", created=T0)))
    probe = make_job("probe", created=T0 + timedelta(seconds=1))
    assert run(store.count_pending_before(probe)) == 1


# --- listing with cursors ----------------------------------------------------------------


def _seed_listing(store: SqliteJobStore) -> list[str]:
    """Owner A's ids newest first; owner B's jobs interleaved in time."""
    mine: list[Job] = []
    for n in range(8):
        job = make_job(f"a-{n:02d}", created=T0 + timedelta(seconds=n))
        mine.append(job)
        run(store.insert(job))
        run(store.insert(make_job(f"b-{n:02d}", owner="owner-b", created=job.created_at)))
    # Two of A's jobs share one created_at: the id breaks the tie.
    tie = T0 + timedelta(seconds=100)
    for job_id in ("a-tie-x", "a-tie-y"):
        job = make_job(job_id, created=tie)
        mine.append(job)
        run(store.insert(job))
    ordered = sorted(mine, key=lambda j: (j.created_at, j.id), reverse=True)
    return [j.id for j in ordered]


def test_list_for_owner_pages_through_everything_newest_first(store: SqliteJobStore) -> None:
    expected = _seed_listing(store)
    assert expected[:2] == ["a-tie-y", "a-tie-x"]
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = run(store.list_for_owner("owner-a", 3, cursor))
        pages += 1
        assert len(page.jobs) <= 3
        assert all(j.owner == "owner-a" for j in page.jobs)
        seen.extend(j.id for j in page.jobs)
        if page.next_cursor is None:
            break
        assert len(page.jobs) == 3
        cursor = page.next_cursor
    assert seen == expected
    assert pages == 4  # 10 jobs: 3 + 3 + 3 + 1


def test_list_for_owner_exact_multiple_has_no_trailing_cursor(store: SqliteJobStore) -> None:
    for n in range(6):
        run(store.insert(make_job(f"j-{n}", created=T0 + timedelta(seconds=n))))
    first = run(store.list_for_owner("owner-a", 3, None))
    assert [j.id for j in first.jobs] == ["j-5", "j-4", "j-3"]
    assert first.next_cursor is not None
    second = run(store.list_for_owner("owner-a", 3, first.next_cursor))
    assert [j.id for j in second.jobs] == ["j-2", "j-1", "j-0"]
    assert second.next_cursor is None
    whole = run(store.list_for_owner("owner-a", 6, None))
    assert len(whole.jobs) == 6 and whole.next_cursor is None


def test_list_for_owner_returns_full_jobs(store: SqliteJobStore) -> None:
    job = completed_job("listed")
    run(store.insert(job))
    page = run(store.list_for_owner("owner-a", 10, None))
    assert page.jobs == [job]


def test_other_owners_jobs_are_invisible(store: SqliteJobStore) -> None:
    _seed_listing(store)
    page = run(store.list_for_owner("owner-b", 100, None))
    assert [j.id for j in page.jobs] == [f"b-{n:02d}" for n in reversed(range(8))]
    assert page.next_cursor is None
    assert run(store.list_for_owner("owner-c", 10, None)).jobs == []
    # Owner A's cursor, presented by owner B, still only ever yields B's jobs.
    a_page = run(store.list_for_owner("owner-a", 2, None))
    assert a_page.next_cursor is not None
    b_page = run(store.list_for_owner("owner-b", 100, a_page.next_cursor))
    assert b_page.jobs and all(j.owner == "owner-b" for j in b_page.jobs)


def test_cursor_is_opaque_urlsafe_text(store: SqliteJobStore) -> None:
    _seed_listing(store)
    page = run(store.list_for_owner("owner-a", 1, None))
    assert page.next_cursor is not None
    assert re.fullmatch(r"[A-Za-z0-9_=-]+", page.next_cursor)
    created, job_id = job_rows.decode_cursor(page.next_cursor)
    assert job_id == page.jobs[-1].id
    assert job_rows.parse_time(created) == page.jobs[-1].created_at


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "abc",  # bad padding
        "!!!not base64!!!",
        base64.urlsafe_b64encode(b"\xff\xfe\xfd").decode(),  # not UTF-8
        base64.urlsafe_b64encode(b"yesterday|job-1").decode(),  # not a time
        base64.urlsafe_b64encode(b"2024-05-01 12:00:00|job-1").decode(),  # wrong format
        base64.urlsafe_b64encode(b"no separator at all").decode(),
    ],
)
def test_malformed_cursor_raises_value_error(store: SqliteJobStore, cursor: str) -> None:
    run(store.insert(make_job("j")))
    with pytest.raises(ValueError):
        run(store.list_for_owner("owner-a", 10, cursor))


# --- migrations --------------------------------------------------------------------------


def _recorded(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute(f"SELECT name FROM {MIGRATIONS_TABLE} ORDER BY id")]


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
    applied_at = conn.execute(f"SELECT applied_at FROM {MIGRATIONS_TABLE}").fetchall()
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
    store = SqliteJobStore(tmp_path / "db.sqlite3", migrations=mdir)
    run(store.insert(make_job("j")))
    assert run(store.get("j")) is not None
    store.close()
    with sqlite3.connect(tmp_path / "db.sqlite3") as conn:
        assert "9999_extra.sql" in _recorded(conn)


def test_reopening_the_store_does_not_reapply_migrations(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    first = SqliteJobStore(path)
    job = completed_job("kept")
    run(first.insert(job))
    first.close()
    second = SqliteJobStore(path)
    assert run(second.get("kept")) == job
    second.close()
    third = SqliteJobStore(path)
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
    assert here == Path(sqlite_store.__file__).resolve().parents[3] / "migrations"
    assert (here / "0001_create_jobs.sql").is_file()


def test_migrations_dir_falls_back_to_the_packaged_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_store.Path, "is_dir", lambda self: False)
    packaged = migrations_dir()
    assert packaged == Path(sqlite_store.__file__).resolve().parents[2] / "_migrations"


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
    del row["quality"]
    conn.execute(
        f"INSERT INTO jobs ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})",
        tuple(row.values()),
    )
    conn.close()
    store = SqliteJobStore(path)  # applies 0003 on top
    got = run(store.get("old"))
    store.close()
    assert got is not None and got.quality is Quality.STANDARD
