"""The caller's usage: daily buckets of its jobs (docs/API.md#usage)."""

from typing import Annotated, Any

from litestar import Request, Router, get
from litestar.params import QueryParameter

from contracts import ErrorCode, UsageReport
from edge_worker.http.dependencies import CLIENT_MIDDLEWARE, client_owner, client_use_cases
from edge_worker.http.openapi import documented


@get(
    "/usage",
    **documented("getUsage", [ErrorCode.INVALID_INPUT]),
    summary="Daily usage of the caller's jobs, by quality",
    description="Jobs created, completed and failed, and their audio, video and GPU seconds, "
    "in buckets by the UTC day each job was created. At most 366 days; days without jobs "
    "have no bucket.",
)
async def get_usage(
    request: Request[Any, Any, Any],
    first: Annotated[
        str | None,
        QueryParameter(name="from", description="First day, YYYY-MM-DD (default: `to` - 29)"),
    ] = None,
    last: Annotated[
        str | None,
        QueryParameter(name="to", description="Last day, YYYY-MM-DD, included (default: today)"),
    ] = None,
) -> UsageReport:
    usage = client_use_cases(request).usage
    return await usage.for_owner(client_owner(request), first, last)


usage_router = Router(path="/", route_handlers=[get_usage], middleware=CLIENT_MIDDLEWARE)
