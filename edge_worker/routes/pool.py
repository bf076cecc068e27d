"""`GET /pool` (docs/API.md#get-pool): the RunPod pool for operators holding ADMIN_TOKEN;
like the rest of the admin API, left out of the public OpenAPI document."""

from typing import Any

from litestar import Request, get

from contracts import ErrorCode
from contracts.pool import PoolView
from edge_worker.http.dependencies import admin_guard, provide_use_cases
from edge_worker.http.openapi import documented


@get(
    "/pool",
    guards=[admin_guard],
    include_in_schema=False,
    **documented("getPool", (ErrorCode.UNAUTHORIZED, ErrorCode.NOT_FOUND), scheme=None),
    summary="The pool's pods, its last decision and why, its cost per hour, RunPod errors",
)
async def pool_status(request: Request[Any, Any, Any]) -> PoolView:
    return await provide_use_cases(request.app.state).pool.status()
