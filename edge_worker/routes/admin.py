"""The admin API (docs/API.md#admin-api): API keys as data, for operators holding
ADMIN_TOKEN; left out of the public OpenAPI document."""

from typing import Any

from litestar import Request, Router, delete, get, post
from litestar.params import FromPath, JSONBody

from contracts import KeyCreated, KeyCreateRequest, KeyList, KeyView
from edge_worker.http.dependencies import admin_guard, admin_keys


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


admin_router = Router(
    path="/admin/keys",
    route_handlers=[create_key, list_keys, revoke_key, rotate_key],
    guards=[admin_guard],
    include_in_schema=False,
)
