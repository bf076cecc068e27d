"""The Worker's own paths under Pyodide: the runtime it runs on, what it imports and when,
the body guard in front of the ASGI bridge, what lands in D1, R2 and the queue, presigned
URLs, the cron trigger, and the top-level randomness rule."""

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from contracts import JobStatus, QueueMessage
from edge_worker.adapters.cloudflare.d1_executor import D1Executor
from edge_worker.adapters.sql_job_store import SqlJobStore
from scripts import stage_worker
from tests.cf_bridge.proxies import D1Database, R2Bucket
from tests.cf_bridge.test_worker import assert_the_result_expired, store_a_result_past_retention
from tests.conftest import mp4_bytes, wav_bytes
from tests.edge_worker.conftest import AGENT_AUTH, AUTH, submit
from tests.pyodide.runner import HostStartError, RunningWorker, deployed_pyodide, start_worker

MiB = 1024 * 1024
INLINE_CAP = 24 * MiB  # the Worker's MAX_INLINE_REQUEST_BYTES in wrangler.toml
FIRST_REQUEST_IMPORT_GOAL = 10


def test_the_worker_runs_on_the_runtime_it_deploys_to(worker: RunningWorker) -> None:
    package = json.loads((stage_worker.ROOT / "package.json").read_text())
    assert package["devDependencies"]["pyodide"] == deployed_pyodide() == "314.0.4"
    assert worker.ready["python"].startswith("3.14.2 ")
    assert "edge_worker.worker" in worker.ready["modules"]


def test_the_first_request_finds_its_modules_imported(worker: RunningWorker) -> None:
    """What the first request imports misses workerd's snapshot: every new isolate pays."""
    first = worker.requests()[0]
    assert len(first["new_modules"]) < FIRST_REQUEST_IMPORT_GOAL, first["new_modules"]


def vendored_top_level(path: str) -> str | None:
    marker = "/session/metadata/python_modules/"
    return path.split(marker, 1)[1].split("/")[0] if marker in path else None


def test_the_bundle_holds_what_the_worker_imports_and_nothing_else(
    worker: RunningWorker,
) -> None:
    bundled = json.loads(stage_worker.BUNDLE_STAMP.read_text())["top_level"]
    loaded = {name for path in worker.loaded_files() if (name := vendored_top_level(path))}
    owner = {top: dist for dist, tops in bundled.items() for top in tops}
    assert loaded <= set(owner), sorted(loaded - set(owner))
    unused = sorted(dist for dist, tops in bundled.items() if not loaded & set(tops))
    assert unused == [], f"bundled but never imported: {unused}"


def test_a_body_over_the_inline_cap_is_refused_before_it_is_read(
    client: httpx.Client,
) -> None:
    assert client.get("/health").json()["limits"]["max_request_bytes"] == INLINE_CAP
    body = bytes(INLINE_CAP + 1)
    headers = {**AUTH, "Content-Type": "multipart/form-data; boundary=x"}
    response = client.post("/generate", headers=headers, content=body)
    assert response.status_code == 413
    error = response.json()["error"]
    assert (error["code"], error["details"]) == ("PAYLOAD_TOO_LARGE", {"limit_bytes": INLINE_CAP})
    assert "POST /uploads" in error["message"]
    assert len(response.headers["x-request-id"]) == 32


def test_a_body_without_a_length_is_refused(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"--x--"

    headers = {**AUTH, "Content-Type": "multipart/form-data; boundary=x"}
    response = client.post("/generate", headers=headers, content=chunks())
    assert response.status_code == 400
    errors = response.json()["error"]["details"]["errors"]
    assert [error["field"] for error in errors] == ["Content-Length"]


def test_a_job_lands_in_d1_r2_and_the_queue(client: httpx.Client, worker: RunningWorker) -> None:
    job_id = submit(client)["job_id"]
    stored = asyncio.run(SqlJobStore(D1Executor(D1Database(worker.control))).get(job_id))
    assert stored is not None and stored.status is JobStatus.PENDING
    bucket = R2Bucket(worker.control)
    for key in stored.input_keys:
        assert asyncio.run(bucket.head(key)) is not None, key
    sent = [m for m in worker.queued() if m["body"].get("job_id") == job_id]
    assert [QueueMessage.model_validate(m["body"]).job_id for m in sent] == [job_id]
    assert sent[0]["options"] == {"contentType": "json"}


def test_claim_urls_are_presigned_for_r2_and_checked(client: httpx.Client) -> None:
    job_id = submit(client)["job_id"]
    claim = client.post(
        f"/agent/jobs/{job_id}/claim", json={"agent_id": "gpu-1"}, headers=AGENT_AUTH
    ).json()
    urls = [
        claim["inputs"]["image_url"],
        claim["inputs"]["audio_url"],
        claim["output"]["upload_url"],
    ]
    for url in urls:
        assert url.startswith("https://acc0123.r2.cloudflarestorage.com/avatar-media/")
        assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url and "X-Amz-Signature=" in url
    assert client.get(urls[0]).content.startswith(b"\x89PNG")
    tampered = urls[0].replace("image.png", "audio.wav")
    assert client.get(tampered).status_code == 403


def test_the_cron_trigger_expires_a_result_past_retention(
    client: httpx.Client, worker: RunningWorker
) -> None:
    db, bucket = D1Database(worker.control), R2Bucket(worker.control)
    store_a_result_past_retention(db, bucket)
    worker.scheduled()
    assert_the_result_expired(db, bucket)


def top_level_worker(tmp_path: Path, source: str) -> Path:
    folder = tmp_path / "worker"
    folder.mkdir()
    (folder / "worker_entry.py").write_text(source)
    return folder


@pytest.mark.parametrize(
    ("source", "refusal"),
    [
        ("import uuid\nuuid.uuid4()\n", "Cannot get entropy outside of request context"),
        ("import random\nrandom.random()\n", "Cannot use random.random() outside of request"),
    ],
)
def test_randomness_at_the_top_level_is_refused(
    tmp_path: Path, worker: RunningWorker, source: str, refusal: str
) -> None:
    """The rule is in force while the main module imports: a Worker that reads randomness
    there does not start (workerd refuses it the same way at deploy)."""
    with pytest.raises(HostStartError, match=re.escape(refusal)):
        start_worker(top_level_worker(tmp_path, source), stage_worker.VENDORED)


def test_a_dubbing_job_and_its_capabilities_on_the_worker(
    client: httpx.Client, worker: RunningWorker
) -> None:
    """The new fields through D1 (migration 0010) and R2: a video job, refused to an
    image-only agent, handed with its presigned video to a capable one."""
    video = mp4_bytes(0.4)
    files = {"video": ("clip.mp4", video), "audio": ("a.wav", wav_bytes())}
    created = client.post("/generate", headers=AUTH, files=files, data={"prompt": "Dub"})
    assert created.status_code == 200, created.text
    job_id = created.json()["job_id"]
    assert created.json()["input_kind"] == "video"
    stored = asyncio.run(SqlJobStore(D1Executor(D1Database(worker.control))).get(job_id))
    assert stored is not None and stored.image_key == "" and stored.video_key
    claim_url = f"/agent/jobs/{job_id}/claim"
    refused = client.post(claim_url, json={"agent_id": "old"}, headers=AGENT_AUTH)
    assert (refused.status_code, refused.json()["error"]["code"]) == (422, "MISSING_CAPABILITY")
    body = {"agent_id": "gpu-1", "capabilities": ["image", "video"]}
    claim = client.post(claim_url, json=body, headers=AGENT_AUTH).json()
    assert claim["inputs"]["image_url"] is None
    assert client.get(claim["inputs"]["video_url"]).content == video
    assert client.get(f"/status/{job_id}", headers=AUTH).json()["status"] == "processing"
