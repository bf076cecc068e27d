"""`SqlKeyStore`: the KeyStore port in SQL, once for D1 and SQLite (like `SqlJobStore`)."""

from datetime import datetime
from typing import Any

from edge_worker.adapters.job_rows import (
    format_optional_time,
    format_time,
    parse_optional_time,
    parse_time,
)
from edge_worker.adapters.sql_job_store import SqlExecutor
from edge_worker.domain.api_keys import ApiKey, KeyLimits

COLUMNS = (
    "id",
    "name",
    "owner",
    "key_hash",
    "prefix",
    "created_at",
    "last_used_at",
    "expires_at",
    "revoked_at",
    "rate_limit_per_minute",
    "max_active_jobs",
    "daily_video_seconds",
)
# Built from the constant column list above; every value travels as a `?` parameter.
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM api_keys"  # noqa: S608
INSERT_SQL = (
    f"INSERT INTO api_keys ({', '.join(COLUMNS)}) "  # noqa: S608
    f"VALUES ({', '.join('?' for _ in COLUMNS)})"
)
GET_SQL = f"{_SELECT} WHERE id = ?"
BY_HASH_SQL = f"{_SELECT} WHERE key_hash = ?"
LIST_SQL = f"{_SELECT} ORDER BY created_at, id"
REHASH_SQL = "UPDATE api_keys SET key_hash = ?, prefix = ? WHERE id = ? AND revoked_at IS NULL"
REVOKE_SQL = "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"
TOUCH_SQL = (
    "UPDATE api_keys SET last_used_at = ? "
    "WHERE id = ? AND (last_used_at IS NULL OR last_used_at <= ?)"
)


def to_row(key: ApiKey) -> tuple[Any, ...]:
    return (
        key.id,
        key.name,
        key.owner,
        key.key_hash,
        key.prefix,
        format_time(key.created_at),
        format_optional_time(key.last_used_at),
        format_optional_time(key.expires_at),
        format_optional_time(key.revoked_at),
        key.limits.rate_limit_per_minute,
        key.limits.max_active_jobs,
        key.limits.daily_video_seconds,
    )


def from_row(row: dict[str, Any]) -> ApiKey:
    seconds = row["daily_video_seconds"]
    return ApiKey(
        id=row["id"],
        name=row["name"],
        owner=row["owner"],
        key_hash=row["key_hash"],
        prefix=row["prefix"],
        created_at=parse_time(row["created_at"]),
        last_used_at=parse_optional_time(row["last_used_at"]),
        expires_at=parse_optional_time(row["expires_at"]),
        revoked_at=parse_optional_time(row["revoked_at"]),
        limits=KeyLimits(
            rate_limit_per_minute=row["rate_limit_per_minute"],
            max_active_jobs=row["max_active_jobs"],
            daily_video_seconds=float(seconds) if seconds is not None else None,
        ),
    )


class SqlKeyStore:
    def __init__(self, db: SqlExecutor) -> None:
        self._db = db

    async def insert(self, key: ApiKey) -> None:
        await self._db.execute(INSERT_SQL, to_row(key))

    async def get(self, key_id: str) -> ApiKey | None:
        found = await self._db.first(GET_SQL, (key_id,))
        return from_row(found) if found else None

    async def find_by_hash(self, key_hash: str) -> ApiKey | None:
        found = await self._db.first(BY_HASH_SQL, (key_hash,))
        return from_row(found) if found else None

    async def list_all(self) -> list[ApiKey]:
        return [from_row(row) for row in await self._db.rows(LIST_SQL, ())]

    async def set_secret(self, key: ApiKey) -> bool:
        params = (key.key_hash, key.prefix, key.id)
        return await self._db.execute(REHASH_SQL, params) == 1

    async def revoke(self, key_id: str, at: datetime) -> bool:
        return await self._db.execute(REVOKE_SQL, (format_time(at), key_id)) == 1

    async def touch(self, key_id: str, at: datetime, not_after: datetime) -> None:
        await self._db.execute(TOUCH_SQL, (format_time(at), key_id, format_time(not_after)))
