"""Fault injection over real processes: short timeouts so failures are noticed in seconds."""

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from examples.make_examples import make_speech_wav
from tests.e2e.conftest import Stack
from tests.e2e.conftest import stack_factory as stack_factory  # the same fixture

FAST_RECOVERY = {
    "HEARTBEAT_TIMEOUT_SECONDS": "3",
    "HEARTBEAT_INTERVAL_SECONDS": "0.5",
    "MAINTENANCE_INTERVAL_SECONDS": "0.5",
    "RETRY_BACKOFF_SECONDS": "0",
}


@pytest.fixture(scope="session")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Callable[[float], Path]:
    """`speech(seconds)`: a speech-like WAV of that length, made once per length."""
    directory = tmp_path_factory.mktemp("speech")

    def make(seconds: float) -> Path:
        path = directory / f"speech-{seconds:g}s.wav"
        if not path.exists():
            make_speech_wav(path, seconds=seconds)
        return path

    return make


def read_only(path: Path, sql: str) -> list[sqlite3.Row]:
    """Rows from one of the edge's SQLite files, opened read-only beside the running edge."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def job_rows(stack: Stack) -> dict[str, sqlite3.Row]:
    """The edge's own record of every job, for facts the API does not expose."""
    rows = read_only(stack.data_dir / "jobs.sqlite3", "SELECT * FROM jobs")
    return {row["id"]: row for row in rows}


def uploads(stack: Stack, job_id: str) -> list[Path]:
    return sorted((stack.data_dir / "blobs" / "videos" / job_id).glob("*.mp4"))


def agent_index(agent_id: str) -> int:
    return int(agent_id.rsplit("-", 1)[1])
