"""One Worker under Pyodide per session, built from the deployable bundle, and a `client`
for it that the local runtime's API tests can use unchanged.

The bundle must be current: python_modules/ built from requirements/worker-pyodide.txt
(`make worker-bundle`, which `make test` runs first); the sources are staged afresh here.
The session's first request is the heaviest a new isolate commonly gets, a multipart
POST /generate; tests/pyodide/test_worker.py holds it to the cold-start goal.
.avatar/worker/summary.json keeps the session's measurements.
"""

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from scripts import stage_worker, vendor_worker
from tests.cf_bridge.bridge import reset_d1
from tests.conftest import png_bytes, wav_bytes
from tests.edge_worker.conftest import AUTH
from tests.pyodide.runner import R2Gateway, RunningWorker, start_worker

SUMMARY = stage_worker.ROOT / ".avatar" / "worker" / "summary.json"
BUCKET_NAME = "avatar-media"  # wrangler.toml's R2_BUCKET_NAME and BUCKET binding


def first_request(worker: RunningWorker) -> httpx.Response:
    return httpx.post(
        f"{worker.url}/generate",
        headers=AUTH,
        files={"image": ("face.png", png_bytes()), "audio": ("speech.wav", wav_bytes())},
        data={"prompt": "A person talking", "resolution": "480p"},
        timeout=120,
    )


def summary(worker: RunningWorker) -> dict[str, Any]:
    events = worker.requests()
    size, compressed = vendor_worker.bundle_size(stage_worker.TARGET, stage_worker.VENDORED)
    return {
        "pyodide": "314.0.4",
        "boot_seconds": worker.ready["boot_seconds"],
        "import_seconds": worker.ready["import_seconds"],
        "modules_at_import": len(worker.ready["modules"]),
        "first_request_seconds": events[0]["seconds"],
        "first_request_new_modules": events[0]["new_modules"],
        "events": len(events),
        "later_new_modules": sorted({m for event in events[1:] for m in event["new_modules"]}),
        "bundle_bytes": size,
        "bundle_gzip_bytes": compressed,
    }


@pytest.fixture(scope="session")
def worker() -> Iterator[RunningWorker]:
    problem = stage_worker.vendored_problem()
    if problem is not None:
        pytest.fail(f"{problem}: run `make worker-bundle`")
    stage_worker.stage()
    running = start_worker(stage_worker.TARGET, stage_worker.VENDORED)
    try:
        probe = first_request(running)
        assert probe.status_code == 200, probe.text
        yield running
        SUMMARY.parent.mkdir(parents=True, exist_ok=True)
        SUMMARY.write_text(json.dumps(summary(running), indent=1) + "\n")
    finally:
        running.stop()


@pytest.fixture
def client(worker: RunningWorker) -> Iterator[httpx.Client]:
    """The Worker over HTTP, on an empty D1; presigned R2 URLs reach its local bucket."""
    reset_d1(worker.control)
    transport = R2Gateway(worker.control, BUCKET_NAME)
    with httpx.Client(base_url=worker.url, transport=transport, timeout=120) as test_client:
        yield test_client
