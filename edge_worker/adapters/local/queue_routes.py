"""Cloudflare's Queues pull/ack HTTP API, served by the local edge so that the agent's
Cloudflare client is exactly the code that runs in production."""

from typing import Any

from litestar import Request, Response, Router, post
from litestar.exceptions import HTTPException
from litestar.params import FromPath, JSONBody

from contracts import AckRequest, PullRequest
from edge_worker.adapters.local.sqlite_queue import SqliteQueue
from edge_worker.auth import bearer_token, matches_any


def _cf_envelope(
    result: Any, status: int = 200, errors: list[dict[str, Any]] | None = None
) -> Response[dict[str, Any]]:
    body = {"success": not errors, "errors": errors or [], "messages": [], "result": result}
    return Response(body, status_code=status)


def _cf_error(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """Errors in Cloudflare's shape, not ours: this router impersonates api.cloudflare.com."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    message = exc.detail if isinstance(exc, HTTPException) else "internal error"
    return _cf_envelope(None, status, [{"code": 10000 + status, "message": message}])


def queue_routes(queue: SqliteQueue, account_id: str, queue_id: str, api_token: str) -> Router:
    def check(
        request: Request[Any, Any, Any], account: str, queue_name: str
    ) -> Response[dict[str, Any]] | None:
        token = bearer_token(request.headers)
        if token is None or not matches_any(token, (api_token,)):
            return _cf_envelope(None, 401, [{"code": 10000, "message": "Authentication error"}])
        if account != account_id or queue_name != queue_id:
            return _cf_envelope(None, 404, [{"code": 11000, "message": "queue not found"}])
        return None

    @post("/{account:str}/queues/{queue_name:str}/messages/pull", status_code=200)
    async def pull(
        account: FromPath[str],
        queue_name: FromPath[str],
        request: Request[Any, Any, Any],
        data: JSONBody[PullRequest],
    ) -> Response[dict[str, Any]]:
        refused = check(request, account, queue_name)
        if refused:
            return refused
        result = queue.pull(data.batch_size, data.timeout_ms(queue.default_visibility_ms))
        return _cf_envelope(result.model_dump())

    @post("/{account:str}/queues/{queue_name:str}/messages/ack", status_code=200)
    async def ack(
        account: FromPath[str],
        queue_name: FromPath[str],
        request: Request[Any, Any, Any],
        data: JSONBody[AckRequest],
    ) -> Response[dict[str, Any]]:
        refused = check(request, account, queue_name)
        if refused:
            return refused
        return _cf_envelope(queue.ack(data).model_dump())

    return Router(
        path="/client/v4/accounts",
        route_handlers=[pull, ack],
        exception_handlers={Exception: _cf_error},
        include_in_schema=False,
    )
