"""A real local edge (SQLite, files, queue emulator) behind Litestar's test client."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from litestar.testing import TestClient

from edge_worker.local import LocalRuntime, build_local, local_settings
from tests.conftest import png_bytes, wav_bytes

API_KEY = "test-key-alice-0123456789"
OTHER_KEY = "test-key-bob-0123456789"
AGENT_TOKEN = "test-agent-token-0123456789"
CF_TOKEN = "test-queue-token-0123456789"
PEPPER = "test-api-key-pepper-0123456789"
ENV = {
    "API_KEYS": f"{API_KEY},{OTHER_KEY}",
    "AGENT_TOKEN": AGENT_TOKEN,
    "SIGNING_SECRET": "test-signing-secret-0123456789",
    "CF_API_TOKEN": CF_TOKEN,
    "API_KEY_PEPPER": PEPPER,
    # Requeued jobs are visible at once, so tests can pull them without waiting.
    "RETRY_BACKOFF_SECONDS": "0",
}
AUTH = {"Authorization": f"Bearer {API_KEY}"}
OTHER_AUTH = {"Authorization": f"Bearer {OTHER_KEY}"}
AGENT_AUTH = {"Authorization": f"Bearer {AGENT_TOKEN}"}
QUEUE_AUTH = {"Authorization": f"Bearer {CF_TOKEN}"}
PULL_URL = "/client/v4/accounts/local/queues/avatar-jobs/messages/pull"
ACK_URL = "/client/v4/accounts/local/queues/avatar-jobs/messages/ack"


class FakeClock:
    """Starts at the real time (signed URLs are checked against it), ticks 1 ms per reading
    so events stay ordered, and jumps on demand."""

    def __init__(self) -> None:
        self.current = datetime.now(UTC)

    def now(self) -> datetime:
        self.current += timedelta(milliseconds=1)
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def runtime(tmp_path: Path, clock: FakeClock) -> Iterator[LocalRuntime]:
    rt = build_local(local_settings(ENV, "testserver.local", 80), tmp_path / "data", clock)
    yield rt
    rt.close()


@pytest.fixture
def client(runtime: LocalRuntime) -> Iterator[TestClient]:
    with TestClient(runtime.app, base_url="http://testserver.local:80") as test_client:
        yield test_client


def invalid_fields(response) -> list[str | None]:  # type: ignore[no-untyped-def]
    """The fields an `INVALID_INPUT` reply names, in its one details shape."""
    error = response.json()["error"]
    assert (response.status_code, error["code"]) == (400, "INVALID_INPUT"), response.text
    assert set(error["details"]) == {"errors"}
    assert all(set(item) == {"field", "message"} for item in error["details"]["errors"])
    return [item["field"] for item in error["details"]["errors"]]


def submit(client: TestClient, **overrides: object) -> dict:
    files = {"image": ("face.png", png_bytes()), "audio": ("speech.wav", wav_bytes())}
    data = {"prompt": "A person talking", "resolution": "480p"}
    data.update({k: v for k, v in overrides.items() if k in data or k in ("seed", "quality")})
    files.update({k: v for k, v in overrides.items() if k in files})  # type: ignore[misc]
    response = client.post("/generate", headers=AUTH, files=files, data=data)
    assert response.status_code == 200, response.text
    return response.json()
