"""The Worker entrypoint in CPython: its wiring, the per-isolate runtime, the body guard in
front of the ASGI bridge, and the app on real local D1, R2 and Queues (via the bridge).

Pyodide's `workers` module is replaced by a stand-in whose ASGI bridge drives the app with
httpx, the way the runtime's `asgi.fetch` hands it a request and returns its response.
"""

import json
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from contracts import JobStatus, Resolution, ResultMetadata
from contracts.settings import SettingsError
from edge_worker import worker
from edge_worker.adapters.cloudflare.d1_executor import D1Executor
from edge_worker.adapters.sql_job_store import SqlJobStore
from edge_worker.domain import jobs
from tests.cf_bridge.bridge import RunningBridge
from tests.cf_bridge.proxies import D1Database, Queue, R2Bucket, received_messages
from tests.conftest import png_bytes, run, wav_bytes

API_KEY = "worker-test-key-0123456789"
AGENT_TOKEN = "worker-agent-token-0123456789"
SECRETS = {
    "API_KEYS": API_KEY,
    "AGENT_TOKEN": AGENT_TOKEN,
    "API_KEY_PEPPER": "worker-api-key-pepper-0123456789",
    "SIGNING_SECRET": "worker-signing-secret-0123456789",
    "R2_ACCOUNT_ID": "acc0123",
    "R2_ACCESS_KEY_ID": "worker-access-key",
    "R2_SECRET_ACCESS_KEY": "worker-secret-key",
    "R2_BUCKET_NAME": "avatar-media",
}


def make_env(url: str = "http://bridge.invalid", **values: Any) -> types.SimpleNamespace:
    """What `self.env` offers: bindings and vars/secrets as attributes (both queues go to
    the bridge's one queue: no job here has a webhook)."""
    bindings = {
        "DB": D1Database(url),
        "BUCKET": R2Bucket(url),
        "JOBS": Queue(url),
        "WEBHOOKS": Queue(url),
    }
    return types.SimpleNamespace(**bindings, **{**SECRETS, **values})


@dataclass
class Request:
    """The parts of `workers.Request` the entrypoint and the bridge use."""

    method: str
    url: str
    headers: httpx.Headers = field(default_factory=httpx.Headers)
    body: bytes | None = None


@dataclass
class FakeResponse:
    body: str
    status: int
    headers: dict[str, str]


@dataclass
class FakeWorkers:
    """Stand-in for the runtime's `workers` module: `Response` and the ASGI bridge."""

    bridged: list[str] = field(default_factory=list)

    def module(self) -> types.ModuleType:
        async def fetch(app: Any, request: Request, env: Any) -> httpx.Response:
            self.bridged.append(f"{request.method} {request.url}")
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="https://edge.test") as c:
                return await c.request(
                    request.method, request.url, headers=request.headers, content=request.body
                )

        def response(body: str, status: int, headers: dict[str, str]) -> FakeResponse:
            return FakeResponse(body, status, headers)

        module = types.ModuleType("workers")
        module.asgi = types.SimpleNamespace(fetch=fetch)  # type: ignore[attr-defined]
        module.Response = response  # type: ignore[attr-defined]
        return module


@pytest.fixture
def workers(monkeypatch: pytest.MonkeyPatch) -> FakeWorkers:
    fake = FakeWorkers()
    monkeypatch.setitem(sys.modules, "workers", fake.module())
    return fake


@pytest.fixture(autouse=True)
def fresh_isolate(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts like a new isolate, and leaves the root logger as it found it."""
    import logging

    monkeypatch.setattr(worker, "_runtime", None)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def multipart_request(path: str, auth: str) -> Request:
    built = httpx.Request(
        "POST",
        f"https://edge.test{path}",
        headers={"Authorization": f"Bearer {auth}"},
        files={"image": ("p.png", png_bytes()), "audio": ("s.wav", wav_bytes())},
        data={"prompt": "A presenter talking", "resolution": "480p"},
    )
    return Request("POST", path, built.headers, built.read())


def json_request(path: str, auth: str, payload: dict[str, Any]) -> Request:
    body = json.dumps(payload).encode()
    headers = httpx.Headers({"Authorization": f"Bearer {auth}", "Content-Type": "application/json"})
    headers["Content-Length"] = str(len(body))
    return Request("POST", path, headers, body)


# --- wiring, without the bridge ------------------------------------------------------------


def test_the_module_imports_in_cpython_with_the_stand_in_base_class() -> None:
    assert issubclass(worker.Default, worker.WorkerEntrypoint)
    entry = worker.Default("ctx", "env")
    assert (entry.ctx, entry.env) == ("ctx", "env")


def test_env_values_reads_vars_and_secrets_as_text() -> None:
    env = make_env(VIDEO_RETENTION_HOURS=6, HEARTBEAT_TIMEOUT_SECONDS=90.5, MAX_ATTEMPTS=True)
    values = worker.env_values(env)
    assert values["VIDEO_RETENTION_HOURS"] == "6"
    assert values["HEARTBEAT_TIMEOUT_SECONDS"] == "90.5"
    assert values["API_KEYS"] == API_KEY and values["R2_BUCKET_NAME"] == "avatar-media"
    assert "MAX_ATTEMPTS" not in values  # not text, not a number: ignored
    assert "LOG_LEVEL" not in values and "DB" not in values


def test_the_runtime_is_built_once_for_the_same_vars_and_secrets() -> None:
    first = worker.runtime_for(make_env())
    assert worker.runtime_for(make_env()) is first  # a fresh env wrapper, same values
    changed = worker.runtime_for(make_env(MAX_ATTEMPTS="5"))
    assert changed is not first and changed.settings.max_attempts == 5


def test_worker_settings_cap_inline_bodies_and_need_no_queue_api_token() -> None:
    settings = worker.runtime_for(make_env()).settings
    assert settings.max_inline_request_bytes == 24 * 1024 * 1024
    assert settings.max_request_bytes == 24 * 1024 * 1024
    assert settings.cf_api_token is None  # the Worker serves no queue API
    capped = worker.runtime_for(make_env(MAX_INLINE_REQUEST_BYTES="1048576")).settings
    assert capped.max_request_bytes == 1024 * 1024


def test_missing_r2_settings_are_named() -> None:
    env = make_env()
    del env.R2_SECRET_ACCESS_KEY, env.R2_ACCOUNT_ID
    with pytest.raises(SettingsError) as caught:
        worker.runtime_for(env)
    assert set(caught.value.problems) == {"R2_ACCOUNT_ID", "R2_SECRET_ACCESS_KEY"}


def test_bad_edge_settings_are_named() -> None:
    with pytest.raises(SettingsError, match="AGENT_TOKEN"):
        worker.runtime_for(make_env(AGENT_TOKEN="short"))


def refused(workers: FakeWorkers, request: Request, status: int, code: str) -> FakeResponse:
    reply = run(worker.Default(None, make_env()).fetch(request))
    assert isinstance(reply, FakeResponse)
    assert reply.status == status
    assert reply.headers["content-type"] == "application/json"
    assert len(reply.headers["x-request-id"]) == 32
    assert json.loads(reply.body)["error"]["code"] == code
    assert workers.bridged == []  # refused before the bridge read a byte
    return reply


def test_a_body_over_the_inline_cap_is_refused_before_the_bridge(workers: FakeWorkers) -> None:
    headers = httpx.Headers({"Content-Length": str(24 * 1024 * 1024 + 1)})
    reply = refused(workers, Request("POST", "/generate", headers, b"x"), 413, "PAYLOAD_TOO_LARGE")
    error = json.loads(reply.body)["error"]
    assert "POST /uploads" in error["message"]
    assert error["details"] == {"limit_bytes": 24 * 1024 * 1024}


def test_a_body_without_a_length_is_refused(workers: FakeWorkers) -> None:
    reply = refused(workers, Request("POST", "/generate", body=b"chunked"), 400, "INVALID_INPUT")
    assert json.loads(reply.body)["error"]["details"] == {
        "errors": [
            {
                "field": "Content-Length",
                "message": "a request with a body needs a Content-Length header",
            }
        ]
    }


def test_a_malformed_length_is_refused(workers: FakeWorkers) -> None:
    headers = httpx.Headers({"Content-Length": "12, 12"})
    refused(workers, Request("POST", "/generate", headers, b"x"), 400, "INVALID_INPUT")


# --- the app on real local bindings -----------------------------------------------------------


@pytest.fixture
def env(clean_bridge: RunningBridge) -> types.SimpleNamespace:
    return make_env(clean_bridge.url, RETRY_BACKOFF_SECONDS="0")


def test_health_checks_d1_through_the_bridge(
    workers: FakeWorkers, env: types.SimpleNamespace
) -> None:
    reply = run(worker.Default(None, env).fetch(Request("GET", "/health")))
    assert reply.status_code == 200, reply.text
    assert reply.json()["checks"] == {"job_store": "ok"}
    assert workers.bridged == ["GET /health"]


def test_a_job_created_on_the_worker_lands_in_d1_r2_and_the_queue(
    workers: FakeWorkers, env: types.SimpleNamespace, clean_bridge: RunningBridge
) -> None:
    entry = worker.Default(None, env)
    created = run(entry.fetch(multipart_request("/generate", API_KEY)))
    assert created.status_code == 200, created.text
    job_id = created.json()["job_id"]

    stored = run(SqlJobStore(D1Executor(env.DB)).get(job_id))
    assert stored is not None and stored.status is JobStatus.PENDING
    for key in stored.input_keys:
        assert run(env.BUCKET.head(key)) is not None, key
    assert job_id in {m["body"]["job_id"] for m in received_messages(clean_bridge.url)}

    claim = run(
        entry.fetch(json_request(f"/agent/jobs/{job_id}/claim", AGENT_TOKEN, {"agent_id": "gpu-1"}))
    )
    assert claim.status_code == 200, claim.text
    grant = claim.json()
    for url in (grant["inputs"]["image_url"], grant["output"]["upload_url"]):
        assert url.startswith("https://acc0123.r2.cloudflarestorage.com/avatar-media/")
        assert "X-Amz-Signature=" in url


EXPIRING = "job-expiring"


def store_a_result_past_retention(db: Any, bucket: Any) -> None:
    """A job completed 7 hours ago (retention is 6), with its inputs and video in R2."""
    done_at = datetime.now(UTC) - timedelta(hours=7)
    job = jobs.new_job(
        job_id=EXPIRING,
        owner="someone",
        prompt="p",
        resolution=Resolution.P480,
        seed=None,
        image_key=f"inputs/{EXPIRING}/image.png",
        audio_key=f"inputs/{EXPIRING}/audio.wav",
        now=done_at,
    )
    job = jobs.claim(job, agent_id="gpu-1", claim_token="tok", now=done_at)
    result = ResultMetadata(
        size_bytes=3, duration_seconds=1.0, width=64, height=80, engine="preview"
    )
    job = jobs.complete(
        job,
        claim_token="tok",
        result=result,
        result_key=f"videos/{EXPIRING}/1.mp4",
        now=done_at,
        retention=timedelta(hours=6),
    )
    run(SqlJobStore(D1Executor(db)).insert(job))
    for key in [*job.input_keys, f"videos/{EXPIRING}/1.mp4"]:
        run(bucket.put(key, b"abc"))


def assert_the_result_expired(db: Any, bucket: Any) -> None:
    expired = run(SqlJobStore(D1Executor(db)).get(EXPIRING))
    assert expired is not None and expired.status is JobStatus.EXPIRED
    assert run(bucket.list(prefix=f"inputs/{EXPIRING}/"))["objects"] == []
    assert run(bucket.list(prefix=f"videos/{EXPIRING}/"))["objects"] == []


def test_the_cron_sweep_expires_a_result_past_retention(
    env: types.SimpleNamespace, clean_bridge: RunningBridge
) -> None:
    store_a_result_past_retention(env.DB, env.BUCKET)
    run(worker.Default(None, env).scheduled("controller", env, "ctx"))
    assert_the_result_expired(env.DB, env.BUCKET)
