"""`SqliteWebhookQueue`: the WebhookQueue port on a SQLite file, with the consumer side the
local runtime's webhook loop uses: lease the due messages, then ack or retry each with a
delay, as a Cloudflare Queue consumer does (`message.ack()` / `message.retry(...)`).

A lease hides a message for `visibility_seconds`; a runtime that dies mid-delivery leaves it
to come back then, so every event is delivered at least once.
"""

import asyncio
import secrets
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from contracts.webhooks import WebhookMessage
from edge_worker.adapters.local.sqlite_connection import open_sqlite

_SCHEMA = """
CREATE TABLE IF NOT EXISTS webhook_messages (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    visible_at REAL NOT NULL,
    lease_id TEXT
);
CREATE INDEX IF NOT EXISTS webhook_messages_visible ON webhook_messages (visible_at);
"""


@dataclass(frozen=True)
class Leased:
    lease_id: str
    message: WebhookMessage


class SqliteWebhookQueue:
    def __init__(
        self,
        path: Path,
        *,
        visibility_seconds: float = 60.0,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._conn = open_sqlite(path)
        self._conn.executescript(_SCHEMA)
        self.visibility_seconds = visibility_seconds
        self._now = now
        self._sent = asyncio.Event()
        self._consumer_loop: asyncio.AbstractEventLoop | None = None

    def close(self) -> None:
        self._conn.close()

    async def send(self, message: WebhookMessage, delay_seconds: float = 0) -> None:
        self._conn.execute(
            "INSERT INTO webhook_messages (id, body, visible_at) VALUES (?, ?, ?)",
            (uuid.uuid4().hex, message.model_dump_json(), self._now() + delay_seconds),
        )
        self._wake()

    def _wake(self) -> None:
        """Wake the consumer, from its own event loop or from another thread's."""
        loop = self._consumer_loop
        if loop is None or loop.is_closed():
            return
        try:
            same_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            same_loop = False
        if same_loop:
            self._sent.set()
        else:
            loop.call_soon_threadsafe(self._sent.set)

    def lease(self, limit: int) -> list[Leased]:
        """Up to `limit` due messages, hidden from other leases until acked, retried or their
        visibility timeout passes; one transaction, so two consumers never share one."""
        now = self._now()
        conn = self._conn
        leased = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            rows = conn.execute(
                "SELECT id, body FROM webhook_messages WHERE visible_at <= ? "
                "ORDER BY visible_at LIMIT ?",
                (now, limit),
            ).fetchall()
            for message_id, body in rows:
                lease_id = secrets.token_urlsafe(16)
                conn.execute(
                    "UPDATE webhook_messages SET visible_at = ?, lease_id = ? WHERE id = ?",
                    (now + self.visibility_seconds, lease_id, message_id),
                )
                leased.append(Leased(lease_id, WebhookMessage.model_validate_json(body)))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return leased

    def ack(self, lease_id: str) -> None:
        self._conn.execute("DELETE FROM webhook_messages WHERE lease_id = ?", (lease_id,))

    def retry(self, lease_id: str, delay_seconds: float) -> None:
        self._conn.execute(
            "UPDATE webhook_messages SET visible_at = ?, lease_id = NULL WHERE lease_id = ?",
            (self._now() + delay_seconds, lease_id),
        )

    def next_due_in(self) -> float | None:
        """Seconds until the earliest message is due (0 if one is), None when empty."""
        row = self._conn.execute("SELECT MIN(visible_at) FROM webhook_messages").fetchone()
        return None if row[0] is None else max(row[0] - self._now(), 0.0)

    async def wait_for_send(self, seconds: float) -> None:
        """Until a message is sent by this process, or `seconds` pass."""
        self._consumer_loop = asyncio.get_running_loop()
        with suppress(TimeoutError):
            await asyncio.wait_for(self._sent.wait(), seconds)
        self._sent.clear()
