"""`GET /health`: liveness plus a cheap check of each port."""

from typing import Any

from litestar import Response, get
from litestar.di import NamedDependency

from edge_worker import __version__
from edge_worker.http.openapi import documented
from edge_worker.ports import JobStore


@get("/health", **documented("getHealth", [], public=True), summary="Service health (no auth)")
async def health(job_store: NamedDependency[JobStore]) -> Response[dict[str, Any]]:
    checks: dict[str, str] = {}
    try:
        await job_store.get("00000000-0000-0000-0000-000000000000")
        checks["job_store"] = "ok"
    except Exception:
        checks["job_store"] = "error"
    healthy = all(value == "ok" for value in checks.values())
    body = {"status": "ok" if healthy else "degraded", "version": __version__, "checks": checks}
    return Response(body, status_code=200 if healthy else 503)
