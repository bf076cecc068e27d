"""`avatar serve` started with the command line the Dockerfile documents for the all-in-one
pod (the preview engine in place of InfiniteTalk), blobs on moto's S3 server: a direct upload,
a job, the presigned download, expiry, and the SIGTERM hand-back, all over HTTP."""

import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from examples.make_examples import make_speech_wav
from tests.e2e.conftest import API_KEY, AUTH, EXAMPLES, ROOT, free_port, stop, terminal, wait_for
from tests.e2e.test_direct_uploads import upload_and_generate
from tests.e2e.test_upload_to_mp4 import audio_seconds, check_mp4
from tests.edge_worker.cloudflare.fake_r2 import ACCESS_KEY_ID, SECRET_ACCESS_KEY, FakeR2
from tests.faults.conftest import read_only


def documented_command() -> list[str]:
    """What the Dockerfile tells a pod to `exec` for the all-in-one mode."""
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    line = next(line for line in lines if "exec avatar serve" in line)
    command = shlex.split(line.split("exec ", 1)[1].rstrip('"'))
    assert command[:2] == ["avatar", "serve"] and "--engine" in command
    return command


@pytest.fixture
def served(fake_r2: FakeR2, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], dict]]:
    port = free_port()
    bucket = fake_r2.new_bucket()
    env = {
        **os.environ,
        "PORT": str(port),
        "DATA_DIR": str(tmp_path / "volume"),
        "API_KEYS": API_KEY,
        "AGENT_TOKEN": "serve-agent-token-0123456789",
        "API_KEY_PEPPER": "serve-api-key-pepper-0123456789",
        "SIGNING_SECRET": "serve-signing-secret-0123456789",
        "BLOB_STORE": "s3",
        "S3_ENDPOINT_URL": fake_r2.endpoint,
        "S3_BUCKET": bucket,
        "S3_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "S3_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        "VIDEO_RETENTION_HOURS": "0.002",  # 7.2 s
        "MAINTENANCE_INTERVAL_SECONDS": "0.5",
        "HEARTBEAT_INTERVAL_SECONDS": "0.5",
        "SHUTDOWN_GRACE_SECONDS": "0",
    }
    command = documented_command()
    command[command.index("--engine") + 1] = "preview"
    command[0] = str(Path(sys.executable).parent / "avatar")
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert process.poll() is None and time.monotonic() < deadline, (
            tmp_path / "serve.log"
        ).read_text()
        time.sleep(0.2)
    try:
        yield process, {"url": url, "bucket": bucket, "data": tmp_path / "volume"}
    finally:
        stop(process)
        print((tmp_path / "serve.log").read_text()[-6000:])


def test_avatar_serve_runs_jobs_on_s3_expires_them_and_hands_back_on_sigterm(
    served: tuple[subprocess.Popen[bytes], dict], fake_r2: FakeR2, tmp_path: Path
) -> None:
    process, where = served
    image, audio = EXAMPLES / "portrait.png", EXAMPLES / "speech.wav"
    s3 = fake_r2.client()
    with httpx.Client(base_url=where["url"], headers=AUTH, timeout=30) as client:
        grants, created = upload_and_generate(client, image, audio, "A presenter talking")
        assert grants["image"]["url"].startswith(f"{fake_r2.endpoint}/{where['bucket']}/")
        assert created.status_code == 200, created.text
        job_id = created.json()["job_id"]
        final = wait_for(client, job_id, terminal)
        assert final["status"] == "completed", final
        result = client.get(f"/result/{job_id}").json()
        assert result["url"].startswith(f"{fake_r2.endpoint}/{where['bucket']}/videos/{job_id}/")
        video = tmp_path / "out.mp4"
        video.write_bytes(httpx.get(result["url"]).raise_for_status().content)
        assert video.stat().st_size == result["size_bytes"]
        check_mp4(video, audio_seconds(audio), 480)

        wait_for(client, job_id, lambda status: status["status"] == "expired", timeout=30)
        gone = client.get(f"/result/{job_id}")
        assert gone.status_code == 410 and gone.json()["error"]["code"] == "RESULT_EXPIRED"
        assert s3.list_objects_v2(Bucket=where["bucket"]).get("KeyCount") == 0

        long_speech = tmp_path / "long.wav"
        make_speech_wav(long_speech, seconds=60)
        with image.open("rb") as png, long_speech.open("rb") as wav:
            response = client.post(
                "/generate",
                files={"image": ("portrait.png", png), "audio": ("long.wav", wav)},
                data={"prompt": "A long talk", "resolution": "720p"},
            )
        long_job = response.json()["job_id"]
        wait_for(client, long_job, lambda status: status["stage"] == "generating")

    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0
    rows = {
        row["id"]: row for row in read_only(where["data"] / "jobs.sqlite3", "SELECT * FROM jobs")
    }
    assert (rows[long_job]["status"], rows[long_job]["error_code"]) == ("pending", "AGENT_SHUTDOWN")
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{where['url']}/health", timeout=1)
