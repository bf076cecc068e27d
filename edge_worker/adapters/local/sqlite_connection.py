"""`open_sqlite`: how the local stand-ins (job store, queue) open their SQLite files."""

import sqlite3
from pathlib import Path


def open_sqlite(path: Path) -> sqlite3.Connection:
    """An autocommit connection in WAL mode, shareable by several edge processes.

    `synchronous=NORMAL`: in WAL mode a commit no longer waits for an fsync (it was most of a
    submit's time). The files survive a crash of the process; a power loss may lose the last
    commits. That is acceptable for the local stand-in; production's store is D1.
    """
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn
