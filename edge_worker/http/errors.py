"""The exception handlers that turn every failure, a `Problem` or not, into the error
envelope of docs/API.md#errors."""

import logging
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotFoundException,
    ValidationException,
)
from litestar.types import ExceptionHandlersMap

from contracts import ErrorBody, ErrorCode, ErrorEnvelope
from edge_worker.domain.problems import Problem

log = logging.getLogger("edge_worker.errors")


def error_response(
    code: ErrorCode,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[dict[str, Any]]:
    envelope = ErrorEnvelope(error=ErrorBody(code=code, message=message, details=details or {}))
    if code is ErrorCode.UNAUTHORIZED:
        headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
    return Response(
        envelope.model_dump(mode="json"),
        status_code=code.http_status,
        media_type=MediaType.JSON,
        headers=headers,
    )


def _problem(_: Request[Any, Any, Any], exc: Problem) -> Response[dict[str, Any]]:
    return error_response(exc.code, exc.message, exc.details)


def _validation_error(
    _: Request[Any, Any, Any], exc: ValidationException
) -> Response[dict[str, Any]]:
    extra = exc.extra if isinstance(exc.extra, list) else []
    return error_response(ErrorCode.INVALID_INPUT, "request is malformed", {"errors": extra})


_HTTP_CODES = {
    401: (ErrorCode.UNAUTHORIZED, "missing or invalid API key"),
    404: (ErrorCode.NOT_FOUND, "no such route"),
    405: (ErrorCode.METHOD_NOT_ALLOWED, "method not allowed on this route"),
    409: (ErrorCode.CONFLICT, "conflict"),
    413: (ErrorCode.PAYLOAD_TOO_LARGE, "request body is too large"),
    429: (ErrorCode.RATE_LIMITED, "too many requests"),
}


def _http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    if isinstance(exc, NotFoundException):
        code, message = _HTTP_CODES[404]
    elif isinstance(exc, MethodNotAllowedException):
        code, message = _HTTP_CODES[405]
        return error_response(
            code, message, headers={"Allow": (exc.headers or {}).get("allow", "")}
        )
    elif exc.status_code in _HTTP_CODES:
        code, message = _HTTP_CODES[exc.status_code]
    elif exc.status_code < 500:
        code, message = ErrorCode.INVALID_INPUT, exc.detail or "bad request"
    else:
        code, message = ErrorCode.INTERNAL_ERROR, "internal error"
    return error_response(code, message)


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.exception(
        "unhandled error",
        extra={"request_id": request.scope.get("state", {}).get("request_id")},
    )
    return error_response(ErrorCode.INTERNAL_ERROR, "internal error")


exception_handlers: ExceptionHandlersMap = {
    Problem: _problem,
    ValidationException: _validation_error,
    HTTPException: _http_error,
    Exception: _unexpected,
}
