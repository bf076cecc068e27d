"""The admin API (docs/API.md#admin-api): API keys as data and usage across them, for
operators holding ADMIN_TOKEN; left out of the public OpenAPI document."""

from typing import Annotated, Any

from litestar import Request, Router, delete, get, post
from litestar.params import FromPath, JSONBody, QueryParameter

from contracts import AdminUsageReport, KeyCreated, KeyCreateRequest, KeyList, KeyView
from edge_worker.http.dependencies import admin_guard, admin_keys, admin_usage


@post("/", status_code=201)
async def create_key(
    data: JSONBody[KeyCreateRequest], request: Request[Any, Any, Any]
) -> KeyCreated:
    return await admin_keys(request).create(data)


@get("/")
async def list_keys(request: Request[Any, Any, Any]) -> KeyList:
    return await admin_keys(request).list()


@delete("/{key_id:str}", status_code=200)
async def revoke_key(key_id: FromPath[str], request: Request[Any, Any, Any]) -> KeyView:
    return await admin_keys(request).revoke(key_id)


@post("/{key_id:str}/rotate", status_code=200)
async def rotate_key(key_id: FromPath[str], request: Request[Any, Any, Any]) -> KeyCreated:
    return await admin_keys(request).rotate(key_id)


@get("/usage")
async def usage_across_keys(
    request: Request[Any, Any, Any],
    first: Annotated[str | None, QueryParameter(name="from")] = None,
    last: Annotated[str | None, QueryParameter(name="to")] = None,
    key: Annotated[str | None, QueryParameter(name="key")] = None,
) -> AdminUsageReport:
    return await admin_usage(request).across_keys(first, last, key)


admin_router = Router(
    path="/admin",
    route_handlers=[
        Router(path="/keys", route_handlers=[create_key, list_keys, revoke_key, rotate_key]),
        usage_across_keys,
    ],
    guards=[admin_guard],
    include_in_schema=False,
)
