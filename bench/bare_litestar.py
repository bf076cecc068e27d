"""The bare-Litestar ceiling of `make bench`: one handler returning a constant status JSON,
served by uvicorn like the edge. Nothing is read, checked or logged.

    python -m bench.bare_litestar --port 8801
"""

from typing import Any

from litestar import Litestar, get

from bench.stack import serve

STATUS: dict[str, Any] = {
    "job_id": "00000000-0000-0000-0000-000000000000",
    "status": "pending",
    "progress": 0.0,
    "stage": "queued",
    "created_at": "2026-01-01T00:00:00Z",
    "updated_at": "2026-01-01T00:00:00Z",
    "queue_position": 0,
    "resolution": "720p",
    "quality": "standard",
}


@get("/status/{job_id:str}")
async def status(job_id: str) -> dict[str, Any]:
    return STATUS


@get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


def create_app() -> Litestar:
    return Litestar(route_handlers=[status, health], logging_config=None)


if __name__ == "__main__":
    serve(create_app())
