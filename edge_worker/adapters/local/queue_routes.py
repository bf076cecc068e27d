"""Cloudflare's Queues pull/ack HTTP API, served by the local edge so that the agent's
Cloudflare client is exactly the code that runs in production."""

import logging
from typing import Any

from litestar import Request, Response, Router, post
from litestar.connection import ASGIConnection
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    ValidationException,
)
from litestar.handlers import BaseRouteHandler
from litestar.params import JSONBody

from contracts import AckRequest, PullRequest
from edge_worker.adapters.local.sqlite_queue import SqliteQueue
from edge_worker.auth import bearer_token, matches_any


def _cf_envelope(
    result: Any, status: int = 200, errors: list[dict[str, Any]] | None = None
) -> Response[dict[str, Any]]:
    body = {"success": not errors, "errors": errors or [], "messages": [], "result": result}
    return Response(body, status_code=status)


_CF_CODES = {401: 10000, 404: 11000}
log = logging.getLogger("edge_worker.queue")


def _cf_error(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """Errors in Cloudflare's shape, not ours: this router impersonates api.cloudflare.com.
    A failure that is not the request's fault is logged, as the app's own handler does."""
    if not isinstance(exc, HTTPException):
        log.exception("unhandled error in the queue emulator")
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    message = exc.detail if isinstance(exc, HTTPException) else "internal error"
    code = _CF_CODES.get(status, 10000 + status)
    return _cf_envelope(None, status, [{"code": code, "message": message}])


def queue_routes(queue: SqliteQueue, account_id: str, queue_id: str, api_token: str) -> Router:
    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        """Token first, then the queue's address, before any body is read."""
        token = bearer_token(connection.headers)
        if token is None or not matches_any(token, (api_token,)):
            raise NotAuthorizedException("Authentication error")
        params = connection.path_params
        if params.get("account") != account_id or params.get("queue_name") != queue_id:
            raise NotFoundException("queue not found")

    @post("/{account:str}/queues/{queue_name:str}/messages/pull", status_code=200)
    async def pull(data: JSONBody[PullRequest]) -> Response[dict[str, Any]]:
        result = queue.pull(data.batch_size, data.timeout_ms(queue.default_visibility_ms))
        return _cf_envelope(result.model_dump())

    @post("/{account:str}/queues/{queue_name:str}/messages/ack", status_code=200)
    async def ack(data: JSONBody[AckRequest]) -> Response[dict[str, Any]]:
        return _cf_envelope(queue.ack(data).model_dump())

    return Router(
        path="/client/v4/accounts",
        route_handlers=[pull, ack],
        guards=[guard],
        exception_handlers={
            HTTPException: _cf_error,
            ValidationException: _cf_error,
            Exception: _cf_error,
        },
        include_in_schema=False,
    )
