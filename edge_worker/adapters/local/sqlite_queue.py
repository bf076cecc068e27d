"""`SqliteQueue`: the JobQueue port plus Cloudflare Queues' pull/ack semantics on SQLite.

Semantics follow Cloudflare's HTTP pull consumers: a pull leases messages for a visibility
timeout; an ack deletes them; a retry (or an expired lease) makes them visible again; a
message already delivered `max_retries + 1` times is moved to the dead-letter table instead of
being delivered again.
"""

import secrets
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from contracts import AckRequest, AckResult, PulledMessage, PullResult, QueueMessage
from edge_worker.adapters.local.sqlite_connection import open_sqlite

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    visible_at_ms INTEGER NOT NULL,
    lease_id TEXT
);
CREATE INDEX IF NOT EXISTS messages_visible ON messages (visible_at_ms, timestamp_ms);
CREATE UNIQUE INDEX IF NOT EXISTS messages_lease ON messages (lease_id);
CREATE TABLE IF NOT EXISTS dead_letters (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    dead_at_ms INTEGER NOT NULL
);
"""


def _now_ms() -> int:
    return int(time.time() * 1000)


class SqliteQueue:
    def __init__(
        self,
        path: Path,
        *,
        max_retries: int = 3,
        default_visibility_ms: int = 30_000,
        now_ms: Callable[[], int] = _now_ms,
    ) -> None:
        self._conn = open_sqlite(path)
        self._conn.executescript(_SCHEMA)
        self.max_retries = max_retries
        self.default_visibility_ms = default_visibility_ms
        self._now_ms = now_ms

    def close(self) -> None:
        self._conn.close()

    async def send(self, message: QueueMessage, delay_seconds: int = 0) -> None:
        now = self._now_ms()
        self._conn.execute(
            "INSERT INTO messages (id, body, timestamp_ms, visible_at_ms) VALUES (?, ?, ?, ?)",
            (uuid.uuid4().hex, message.model_dump_json(), now, now + delay_seconds * 1000),
        )

    def pull(self, batch_size: int, visibility_timeout_ms: int | None = None) -> PullResult:
        """Lease up to `batch_size` visible messages; one transaction, so two pullers never
        lease the same message."""
        now = self._now_ms()
        visibility = visibility_timeout_ms or self.default_visibility_ms
        leased: list[PulledMessage] = []
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "INSERT INTO dead_letters (id, body, timestamp_ms, attempts, dead_at_ms) "
                "SELECT id, body, timestamp_ms, attempts, ? FROM messages "
                "WHERE visible_at_ms <= ? AND attempts > ?",
                (now, now, self.max_retries),
            )
            conn.execute(
                "DELETE FROM messages WHERE visible_at_ms <= ? AND attempts > ?",
                (now, self.max_retries),
            )
            rows = conn.execute(
                "SELECT id, body, timestamp_ms, attempts FROM messages "
                "WHERE visible_at_ms <= ? ORDER BY timestamp_ms, rowid LIMIT ?",
                (now, batch_size),
            ).fetchall()
            for message_id, body, timestamp_ms, attempts in rows:
                lease_id = secrets.token_urlsafe(24)
                conn.execute(
                    "UPDATE messages SET attempts = ?, visible_at_ms = ?, lease_id = ? "
                    "WHERE id = ?",
                    (attempts + 1, now + visibility, lease_id, message_id),
                )
                leased.append(
                    PulledMessage(
                        id=message_id,
                        body=QueueMessage.model_validate_json(body).encode_for_pull(),
                        timestamp_ms=timestamp_ms,
                        attempts=attempts + 1,
                        lease_id=lease_id,
                        metadata={"CF-sourceMessageSource": "api", "CF-Content-Type": "json"},
                    )
                )
            backlog = conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return PullResult(messages=leased, message_backlog_count=backlog)

    def ack(self, request: AckRequest) -> AckResult:
        """Unknown or superseded lease ids are accepted silently, as Cloudflare does."""
        acked = retried = 0
        now = self._now_ms()
        for ref in request.acks:
            acked += self._conn.execute(
                "DELETE FROM messages WHERE lease_id = ?", (ref.lease_id,)
            ).rowcount
        for retry in request.retries:
            retried += self._conn.execute(
                "UPDATE messages SET lease_id = NULL, visible_at_ms = ? WHERE lease_id = ?",
                (now + (retry.delay_seconds or 0) * 1000, retry.lease_id),
            ).rowcount
        return AckResult(ackCount=acked, retryCount=retried)

    def dead_letter_count(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0])
