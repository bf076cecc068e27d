"""The D1 migrations (`migrations/NNNN_*.sql`) applied to a SQLite file, as wrangler does."""

import sqlite3
from pathlib import Path

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
    listed = f"SELECT name FROM {MIGRATIONS_TABLE}"  # noqa: S608 - a constant table name
    done = {row[0] for row in conn.execute(listed)}
    applied = []
    for path in sorted(directory.glob("[0-9][0-9][0-9][0-9]_*.sql")):
        if "'" in path.name:
            raise ValueError(f"migration file name must not contain quotes: {path.name}")
        if path.name in done:
            continue
        # One transaction per file: a failing migration leaves nothing half-applied.
        # The file name is ours, from the migrations folder, and quotes are refused above.
        record = f"INSERT INTO {MIGRATIONS_TABLE} (name) VALUES ('{path.name}');"  # noqa: S608
        try:
            conn.executescript(f"BEGIN;\n{path.read_text()}\n{record}\nCOMMIT;")
        except sqlite3.Error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        applied.append(path.name)
    return applied
