"""The FastAPI baseline of `make bench`: the edge's API shape, jobs kept in memory.

`POST /generate` (multipart image, audio, prompt; bearer key) sniffs both files and keeps
them in memory; `GET /status/{job_id}` returns the same `JobView` JSON as the edge. No
database, no queue, no disk: what the edge costs beyond this is the price of durability and
of its framework.

    python -m bench.baseline_fastapi --port 8800
"""

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, FastAPI, Header, HTTPException, Request
from multipart import MultipartSegment, PushMultipartParser, parse_options_header

from bench.stack import API_KEY, serve
from contracts import JobStatus, JobView, Stage
from contracts.media import SNIFF_BYTES, sniff


@dataclass
class StoredJob:
    view: JobView
    files: dict[str, bytes]


@dataclass
class MemoryJobs:
    jobs: dict[str, StoredJob] = field(default_factory=dict)


async def read_parts(request: Request) -> dict[str, bytes]:
    _, options = parse_options_header(request.headers.get("content-type", ""))
    if "boundary" not in options:
        raise HTTPException(400, "multipart/form-data expected")
    parts: dict[str, bytes] = {}
    name, buffer = "", bytearray()
    with PushMultipartParser(options["boundary"], max_segment_count=16) as parser:
        async for chunk in request.stream():
            for event in parser.parse(chunk):
                if isinstance(event, MultipartSegment):
                    name, buffer = event.name, bytearray()
                elif event is None:
                    parts[name] = bytes(buffer)
                else:
                    buffer += event
    return parts


def create_app(api_key: str = API_KEY) -> FastAPI:
    app = FastAPI(openapi_url=None)
    store = MemoryJobs()

    def owner(authorization: Annotated[str, Header()] = "") -> str:
        if authorization != f"Bearer {api_key}":
            raise HTTPException(401, "invalid API key")
        return "bench"

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/generate", response_model=JobView)
    async def generate(request: Request, _: Annotated[str, Depends(owner)]) -> JobView:
        parts = await read_parts(request)
        for name in ("image", "audio"):
            if sniff(parts.get(name, b"")[:SNIFF_BYTES]) is None:
                raise HTTPException(400, f"{name} is missing or of an unknown format")
        now = datetime.now(UTC)
        view = JobView(
            job_id=str(uuid.uuid4()),
            status=JobStatus.PENDING,
            progress=0.0,
            stage=Stage.QUEUED,
            created_at=now,
            updated_at=now,
            queue_position=len(store.jobs),
        )
        store.jobs[view.job_id] = StoredJob(view, parts)
        return view

    @app.get("/status/{job_id}", response_model=JobView)
    async def status(job_id: str, _: Annotated[str, Depends(owner)]) -> JobView:
        job = store.jobs.get(job_id)
        if job is None:
            raise HTTPException(404, "no such job")
        return job.view

    return app


if __name__ == "__main__":
    serve(create_app())
