"""`SqlWebhookStore`: the WebhookStore port in SQL, once for D1 and SQLite (like
`SqlJobStore`); every call is one statement."""

from datetime import datetime
from typing import Any

from contracts.webhooks import DeliveryState, WebhookEventType
from edge_worker.adapters.job_rows import (
    format_optional_time,
    format_time,
    parse_optional_time,
    parse_time,
)
from edge_worker.adapters.sql_job_store import SqlExecutor
from edge_worker.domain.webhook_deliveries import Attempt, SigningSecrets, WebhookEvent

SECRET_COLUMNS = (
    "owner",
    "secret",
    "previous_secret",
    "previous_until",
    "created_at",
    "rotated_at",
)
EVENT_COLUMNS = (
    "id",
    "job_id",
    "owner",
    "type",
    "url",
    "payload",
    "created_at",
    "state",
    "series",
    "series_attempts",
    "series_started_at",
    "attempts",
)
ATTEMPT_COLUMNS = (
    "webhook_id",
    "attempt",
    "attempted_at",
    "status_code",
    "latency_ms",
    "error",
    "next_retry_at",
)


def _insert(table: str, columns: tuple[str, ...], verb: str = "INSERT") -> str:
    return f"{verb} INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"


# Built from the constant names above; every value travels as a `?` parameter.
INSERT_SECRETS_SQL = _insert("webhook_secrets", SECRET_COLUMNS, "INSERT OR IGNORE")
GET_SECRETS_SQL = f"SELECT {', '.join(SECRET_COLUMNS)} FROM webhook_secrets WHERE owner = ?"  # noqa: S608
REPLACE_SECRETS_SQL = (
    "UPDATE webhook_secrets SET secret = ?, previous_secret = ?, previous_until = ?, "
    "rotated_at = ? WHERE owner = ? AND secret = ?"
)
INSERT_EVENT_SQL = _insert("webhook_events", EVENT_COLUMNS)
_SELECT_EVENTS = f"SELECT {', '.join(EVENT_COLUMNS)} FROM webhook_events"  # noqa: S608
GET_EVENT_SQL = f"{_SELECT_EVENTS} WHERE id = ?"
JOB_EVENTS_SQL = f"{_SELECT_EVENTS} WHERE job_id = ? ORDER BY created_at, id"
SAVE_EVENT_SQL = (
    "UPDATE webhook_events SET state = ?, series = ?, series_attempts = ?, "
    "series_started_at = ?, attempts = ? WHERE id = ? AND series = ? AND attempts = ?"
)
LAST_EVENT_SQL = (
    "SELECT created_at FROM webhook_events WHERE job_id = ? AND type = ? "
    "ORDER BY created_at DESC LIMIT 1"
)
INSERT_ATTEMPT_SQL = _insert("webhook_attempts", ATTEMPT_COLUMNS)
JOB_ATTEMPTS_SQL = (
    f"SELECT {', '.join(f'a.{c}' for c in ATTEMPT_COLUMNS)} FROM webhook_attempts a "  # noqa: S608
    "JOIN webhook_events e ON e.id = a.webhook_id WHERE e.job_id = ? "
    "ORDER BY e.created_at, e.id, a.attempt"
)


def _event(row: dict[str, Any]) -> WebhookEvent:
    return WebhookEvent(
        id=row["id"],
        job_id=row["job_id"],
        owner=row["owner"],
        type=WebhookEventType(row["type"]),
        url=row["url"],
        payload=row["payload"],
        created_at=parse_time(row["created_at"]),
        state=DeliveryState(row["state"]),
        series=int(row["series"]),
        series_attempts=int(row["series_attempts"]),
        series_started_at=parse_optional_time(row["series_started_at"]),
        attempts=int(row["attempts"]),
    )


def _attempt(row: dict[str, Any]) -> Attempt:
    return Attempt(
        webhook_id=row["webhook_id"],
        attempt=int(row["attempt"]),
        attempted_at=parse_time(row["attempted_at"]),
        status_code=row["status_code"],
        latency_ms=int(row["latency_ms"]),
        error=row["error"],
        next_retry_at=parse_optional_time(row["next_retry_at"]),
    )


class SqlWebhookStore:
    def __init__(self, db: SqlExecutor) -> None:
        self._db = db

    async def get_secrets(self, owner: str) -> SigningSecrets | None:
        row = await self._db.first(GET_SECRETS_SQL, (owner,))
        if row is None:
            return None
        return SigningSecrets(
            owner=row["owner"],
            secret=row["secret"],
            created_at=parse_time(row["created_at"]),
            previous_secret=row["previous_secret"],
            previous_until=parse_optional_time(row["previous_until"]),
            rotated_at=parse_optional_time(row["rotated_at"]),
        )

    async def insert_secrets(self, secrets: SigningSecrets) -> bool:
        params = (
            secrets.owner,
            secrets.secret,
            secrets.previous_secret,
            format_optional_time(secrets.previous_until),
            format_time(secrets.created_at),
            format_optional_time(secrets.rotated_at),
        )
        return await self._db.execute(INSERT_SECRETS_SQL, params) == 1

    async def replace_secrets(self, secrets: SigningSecrets, expected_secret: str) -> bool:
        params = (
            secrets.secret,
            secrets.previous_secret,
            format_optional_time(secrets.previous_until),
            format_optional_time(secrets.rotated_at),
            secrets.owner,
            expected_secret,
        )
        return await self._db.execute(REPLACE_SECRETS_SQL, params) == 1

    async def insert_event(self, event: WebhookEvent) -> None:
        params = (
            event.id,
            event.job_id,
            event.owner,
            event.type.value,
            event.url,
            event.payload,
            format_time(event.created_at),
            event.state.value,
            event.series,
            event.series_attempts,
            format_optional_time(event.series_started_at),
            event.attempts,
        )
        await self._db.execute(INSERT_EVENT_SQL, params)

    async def get_event(self, webhook_id: str) -> WebhookEvent | None:
        row = await self._db.first(GET_EVENT_SQL, (webhook_id,))
        return _event(row) if row else None

    async def save_event(self, event: WebhookEvent, expected: WebhookEvent) -> bool:
        params = (
            event.state.value,
            event.series,
            event.series_attempts,
            format_optional_time(event.series_started_at),
            event.attempts,
            event.id,
            expected.series,
            expected.attempts,
        )
        return await self._db.execute(SAVE_EVENT_SQL, params) == 1

    async def job_events(self, job_id: str) -> list[WebhookEvent]:
        return [_event(row) for row in await self._db.rows(JOB_EVENTS_SQL, (job_id,))]

    async def last_event_at(self, job_id: str, event_type: WebhookEventType) -> datetime | None:
        row = await self._db.first(LAST_EVENT_SQL, (job_id, event_type.value))
        return parse_time(row["created_at"]) if row else None

    async def insert_attempt(self, attempt: Attempt) -> None:
        params = (
            attempt.webhook_id,
            attempt.attempt,
            format_time(attempt.attempted_at),
            attempt.status_code,
            attempt.latency_ms,
            attempt.error,
            format_optional_time(attempt.next_retry_at),
        )
        await self._db.execute(INSERT_ATTEMPT_SQL, params)

    async def job_attempts(self, job_id: str) -> list[Attempt]:
        return [_attempt(row) for row in await self._db.rows(JOB_ATTEMPTS_SQL, (job_id,))]
