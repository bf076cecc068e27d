"""Test doubles for avatar_client: an in-memory public API behind `httpx.MockTransport`."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from avatar_client import AvatarClient

BASE_URL = "http://api.test"
API_KEY = "sk_test_0123456789abcdef"
JOB_ID = "7d0c1f5e-6a38-4c2b-9a51-3f0f2f0f5e11"
SIGNED_URL = "http://blobs.test/videos/job.mp4?sig=abc&exp=1"
VIDEO = b"\x00\x00\x00\x18ftypmp42" + b"v" * 3000
NOW = "2025-01-01T00:00:00Z"


def job(**overrides: Any) -> dict[str, Any]:
    """A JobView payload as the edge returns it."""
    body: dict[str, Any] = {
        "job_id": JOB_ID,
        "status": "pending",
        "progress": 0.0,
        "stage": "queued",
        "created_at": NOW,
        "updated_at": NOW,
    }
    body.update(overrides)
    return body


def result() -> dict[str, Any]:
    return {
        "job_id": JOB_ID,
        "url": SIGNED_URL,
        "expires_at": "2025-01-01T06:00:00Z",
        "content_type": "video/mp4",
        "size_bytes": len(VIDEO),
        "duration_seconds": 4.0,
        "width": 720,
        "height": 720,
    }


def envelope(status: int, code: str, message: str, **details: Any) -> httpx.Response:
    return httpx.Response(
        status, json={"error": {"code": code, "message": message, "details": details}}
    )


class FakeApi:
    """Answers like the edge: one job whose status walks through `statuses`."""

    def __init__(self, statuses: list[dict[str, Any]] | None = None) -> None:
        self.statuses = list(statuses or [job(status="completed", progress=100, stage="done")])
        self.requests: list[httpx.Request] = []
        self.overrides: dict[str, Callable[[httpx.Request], httpx.Response]] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        for prefix, answer in self.overrides.items():
            if path.startswith(prefix):
                return answer(request)
        if request.url.host == "blobs.test":
            return httpx.Response(200, content=VIDEO)
        if path == "/health":
            return httpx.Response(200, json={"status": "ok", "version": "0.1.0", "checks": {}})
        if request.headers.get("Authorization") != f"Bearer {API_KEY}":
            return envelope(401, "UNAUTHORIZED", "missing or invalid API key")
        if path == "/generate" and request.method == "POST":
            return httpx.Response(200, json=job())
        if path == f"/status/{JOB_ID}":
            body = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
            return httpx.Response(200, json=body)
        if path == f"/result/{JOB_ID}":
            return httpx.Response(200, json=result())
        return envelope(404, "JOB_NOT_FOUND", "no such job")

    def paths(self) -> list[str]:
        return [r.url.path for r in self.requests]


def make_client(api: FakeApi, sleeps: list[float] | None = None) -> AvatarClient:
    recorded = sleeps if sleeps is not None else []
    return AvatarClient(
        BASE_URL,
        API_KEY,
        http=httpx.Client(transport=httpx.MockTransport(api)),
        sleep=recorded.append,
    )


def write_media(tmp_path: Path) -> tuple[Path, Path]:
    """A portrait and a speech file; the fake API does not look at their content."""
    image = tmp_path / "portrait.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + b"i" * 2000)
    audio = tmp_path / "speech.wav"
    audio.write_bytes(b"RIFF" + b"a" * 5000)
    return image, audio
