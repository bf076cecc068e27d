"""`D1Executor`: the SQL job store's executor on a D1 binding.

Statements go through the binding itself rather than a D1 session, so they reach the
primary database and read their own writes; `meta.changes` is the changed-row count.
"""

from typing import Any

from edge_worker.adapters.cloudflare.js_values import field, row
from edge_worker.adapters.sql_job_store import Params


class D1Executor:
    def __init__(self, db: Any) -> None:
        self._db = db

    def _statement(self, sql: str, params: Params) -> Any:
        return self._db.prepare(sql).bind(*params)

    async def rows(self, sql: str, params: Params) -> list[dict[str, Any]]:
        result = await self._statement(sql, params).all()
        return [row(item) for item in field(result, "results") or []]

    async def first(self, sql: str, params: Params) -> dict[str, Any] | None:
        found = await self._statement(sql, params).first()
        return None if found is None else row(found)

    async def execute(self, sql: str, params: Params) -> int:
        result = await self._statement(sql, params).run()
        return int(field(field(result, "meta"), "changes") or 0)
