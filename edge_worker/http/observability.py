"""Request ids and access logs. Keys, tokens and query strings are never logged."""

import logging
import re
import time
import uuid
from typing import Any

from litestar import Request
from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,128}$")
access_log = logging.getLogger("edge_worker.access")
QUEUE_API_PREFIX = "/client/v4/"


def request_id(scope: Scope) -> str:
    """The request's id: the caller's `X-Request-ID` when well-formed, else a new one."""
    state = scope.setdefault("state", {})
    if "request_id" not in state:
        incoming = ""
        for name, value in scope.get("headers", []):
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
        state["request_id"] = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        state["started"] = time.perf_counter()
    return state["request_id"]


async def stamp_response(message: Message, scope: Scope) -> None:
    """`before_send` hook: runs for every response, unknown routes and errors included."""
    if message["type"] != "http.response.start":
        return
    rid = request_id(scope)
    MutableScopeHeaders.from_message(message)["X-Request-ID"] = rid
    started = scope["state"].get("started", time.perf_counter())
    status = message["status"]
    # Agents poll the local queue emulator every few seconds; successful polls are noise.
    quiet = status < 400 and scope.get("path", "").startswith(QUEUE_API_PREFIX)
    access_log.log(
        logging.DEBUG if quiet else logging.INFO,
        "request",
        extra={
            "request_id": rid,
            "method": scope.get("method"),
            "path": scope.get("path"),
            "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
        },
    )


async def mark_request(request: Request[Any, Any, Any]) -> None:
    """`before_request` hook: fixes the id and start time before the handler runs."""
    request_id(request.scope)
