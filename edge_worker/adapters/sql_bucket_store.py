"""`SqlBucketStore`: the BucketStore port in SQL, once for D1 and SQLite (like `SqlJobStore`).

The compare-and-set is one statement either way: `INSERT OR IGNORE` for a first bucket, a
conditional UPDATE on the row's exact previous values for the others."""

from edge_worker.adapters.sql_job_store import SqlExecutor
from edge_worker.domain.quotas import Bucket

GET_SQL = "SELECT tokens, updated_at FROM rate_buckets WHERE owner = ?"
INSERT_SQL = "INSERT OR IGNORE INTO rate_buckets (owner, tokens, updated_at) VALUES (?, ?, ?)"
UPDATE_SQL = (
    "UPDATE rate_buckets SET tokens = ?, updated_at = ? "
    "WHERE owner = ? AND tokens = ? AND updated_at = ?"
)


class SqlBucketStore:
    def __init__(self, db: SqlExecutor) -> None:
        self._db = db

    async def get_bucket(self, owner: str) -> Bucket | None:
        found = await self._db.first(GET_SQL, (owner,))
        if found is None:
            return None
        return Bucket(tokens=float(found["tokens"]), updated_at=float(found["updated_at"]))

    async def save_bucket(self, owner: str, bucket: Bucket, expected: Bucket | None) -> bool:
        if expected is None:
            params = (owner, bucket.tokens, bucket.updated_at)
            return await self._db.execute(INSERT_SQL, params) == 1
        update = (bucket.tokens, bucket.updated_at, owner, expected.tokens, expected.updated_at)
        return await self._db.execute(UPDATE_SQL, update) == 1
