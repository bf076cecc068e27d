"""The exception handlers that turn every failure, a `Problem` or not, into the error
envelope of docs/API.md#errors, with each code's one `details` shape."""

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
from contracts.errors import FieldError, TooLargeDetails
from edge_worker.domain.problems import Problem, invalid_fields, invalid_input
from edge_worker.domain.quotas import QuotaExceeded
from edge_worker.http.rate_limit import rate_headers

log = logging.getLogger("edge_worker.errors")


def problem_response(
    problem: Problem, headers: dict[str, str] | None = None
) -> Response[dict[str, Any]]:
    body = ErrorBody(code=problem.code, message=problem.message, details=problem.details)
    if problem.code is ErrorCode.UNAUTHORIZED:
        headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
    return Response(
        ErrorEnvelope(error=body).model_dump(mode="json"),
        status_code=problem.code.http_status,
        media_type=MediaType.JSON,
        headers=headers,
    )


def _problem(_: Request[Any, Any, Any], exc: Problem) -> Response[dict[str, Any]]:
    if isinstance(exc, QuotaExceeded):
        headers = rate_headers(exc.rate) if exc.rate else {}
        return problem_response(exc, {**headers, "Retry-After": str(exc.retry_after)})
    return problem_response(exc)


def _validation_error(
    _: Request[Any, Any, Any], exc: ValidationException
) -> Response[dict[str, Any]]:
    """Litestar's parameter and body validation, in `INVALID_INPUT`'s one details shape."""
    extra = exc.extra if isinstance(exc.extra, list) else []
    errors = [
        FieldError(field=item.get("key") or None, message=str(item.get("message", "invalid")))
        for item in extra
        if isinstance(item, dict)
    ]
    if not errors:
        return problem_response(invalid_input(exc.detail or "request is malformed"))
    return problem_response(invalid_fields(errors))


_HTTP_CODES = {
    401: (ErrorCode.UNAUTHORIZED, "missing or invalid API key"),
    409: (ErrorCode.CONFLICT, "conflict"),
    429: (ErrorCode.RATE_LIMITED, "too many requests"),
}


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    if isinstance(exc, NotFoundException):
        problem = Problem(ErrorCode.NOT_FOUND, "no such route")
    elif isinstance(exc, MethodNotAllowedException):
        allowed = (exc.headers or {}).get("allow", "")
        return problem_response(
            Problem(ErrorCode.METHOD_NOT_ALLOWED, "method not allowed on this route"),
            {"Allow": allowed},
        )
    elif exc.status_code == 413:
        limit = request.route_handler.resolve_request_max_body_size() or 0
        problem = Problem(
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"request body is larger than {limit} bytes",
            TooLargeDetails(limit_bytes=limit),
        )
    elif exc.status_code in _HTTP_CODES:
        problem = Problem(*_HTTP_CODES[exc.status_code])
    elif exc.status_code < 500:
        problem = invalid_input(exc.detail or "bad request")
    else:
        problem = Problem(ErrorCode.INTERNAL_ERROR, "internal error")
    return problem_response(problem)


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.exception(
        "unhandled error",
        extra={"request_id": request.scope.get("state", {}).get("request_id")},
    )
    return problem_response(Problem(ErrorCode.INTERNAL_ERROR, "internal error"))


exception_handlers: ExceptionHandlersMap = {
    Problem: _problem,
    ValidationException: _validation_error,
    HTTPException: _http_error,
    Exception: _unexpected,
}
