"""S3BlobStore against moto's S3 server over HTTP, with R2's presigned-URL checks in front
(fake_r2.py): the links the agent and clients use, expiry, delete, multipart and retried
uploads, and the bucket tool's lifecycle rules on the same bucket.

The port's common behaviour is tests/contracts_ports/test_blob_store_contract.py.
"""

import io
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import botocore.auth
import httpx
import pytest
from boto3.s3.transfer import TransferConfig
from litestar.testing import TestClient

from contracts.settings import SettingsError
from edge_worker.adapters.local import s3_blobs
from edge_worker.adapters.local.s3_blobs import MiB, S3BlobStore, s3_client
from edge_worker.clock import SystemClock
from edge_worker.domain.storage_keys import video_key
from edge_worker.local import build_local, local_settings
from edge_worker.settings import EdgeSettings
from gpu_agent.transfers import InputChanged, download, upload
from scripts.setup_bucket import lifecycle_rules
from scripts.setup_bucket import main as setup_bucket
from tests.conftest import png_bytes, run
from tests.edge_worker.cloudflare.fake_r2 import ACCESS_KEY_ID, SECRET_ACCESS_KEY, FakeR2
from tests.edge_worker.conftest import AUTH, ENV, submit

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Any]


@pytest.fixture
def bucket(fake_r2: FakeR2) -> str:
    return fake_r2.new_bucket()


def store_for(fake_r2: FakeR2, bucket: str, **transfer: int) -> S3BlobStore:
    client = s3_client(fake_r2.endpoint, "auto", ACCESS_KEY_ID, SECRET_ACCESS_KEY)
    config = TransferConfig(**transfer) if transfer else None
    return S3BlobStore(client, bucket, SystemClock(), config)


@pytest.fixture
def store(fake_r2: FakeR2, bucket: str) -> S3BlobStore:
    return store_for(fake_r2, bucket)


def soon(minutes: float = 5) -> datetime:
    return datetime.now(UTC) + timedelta(minutes=minutes)


def test_an_upload_link_takes_one_body_of_its_size_once(store: S3BlobStore) -> None:
    """Clients PUT with the headers POST /uploads names; the ETag `head` reports is the one
    the agent's GET sees, and a changed object fails the agent's check."""
    key = "inputs/uploads/1-u/image.png"
    body = png_bytes()
    url = store.presign_upload(key, soon(), "image/png", len(body))
    headers = {"Content-Type": "image/png", "If-None-Match": "*"}

    assert httpx.put(url, content=body + b"x", headers=headers).status_code == 403
    assert httpx.put(url, content=body, headers={"Content-Type": "image/png"}).status_code == 403
    assert run(store.head(key)) is None
    assert httpx.put(url, content=body, headers=headers).status_code == 200
    assert httpx.put(url, content=body, headers=headers).status_code == 412

    info = run(store.head(key))
    assert info is not None and info.size_bytes == len(body)
    with httpx.Client() as client:
        target = Path(__file__).parent / "never-written.png"
        with pytest.raises(InputChanged):
            download(client, store.presign_get(key, soon()), target, 10 * MiB, etag='"other"')
        assert not target.exists()
        got = client.get(store.presign_get(key, soon()))
    assert got.content == body and got.headers["etag"] == info.etag


def test_the_agents_result_upload_lands_and_can_be_replaced(
    store: S3BlobStore, tmp_path: Path
) -> None:
    """The agent's own transfer code against the result link (`presign_put`)."""
    key = video_key("job-1", 1)
    video = tmp_path / "out.mp4"
    with httpx.Client() as client:
        for content in (b"first attempt's video", b"second"):
            video.write_bytes(content)
            url = store.presign_put(key, soon(), "video/mp4")
            assert upload(client, url, video, "video/mp4") == len(content)
        copy = tmp_path / "copy.mp4"
        download(client, store.presign_get(key, soon()), copy, MiB)
    assert copy.read_bytes() == b"second"
    with pytest.raises(httpx.HTTPStatusError):
        httpx.put(
            store.presign_put(key, soon(), "video/mp4"),
            content=b"<html>",
            headers={"Content-Type": "text/html"},
        ).raise_for_status()


def test_links_expire(store: S3BlobStore, monkeypatch: pytest.MonkeyPatch) -> None:
    run(store.put("videos/j/1.mp4", io.BytesIO(b"video"), "video/mp4"))
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    signed_at = an_hour_ago.replace(tzinfo=None)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: signed_at)
    monkeypatch.setattr(store, "_clock", type("Then", (), {"now": lambda self: an_hour_ago})())
    expired = store.presign_get("videos/j/1.mp4", an_hour_ago + timedelta(minutes=30))
    assert "X-Amz-Expires=1800" in expired
    response = httpx.get(expired)
    assert response.status_code == 403 and "Request has expired" in response.text
    with pytest.raises(ValueError, match="outside"):
        store.presign_get("videos/j/1.mp4", an_hour_ago - timedelta(seconds=1))


def test_deleted_objects_are_gone_for_links_too(
    store: S3BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3_blobs, "DELETE_BATCH", 2)
    keys = [f"inputs/j/{n}.wav" for n in range(5)]
    for key in keys:
        run(store.put(key, io.BytesIO(b"x"), "audio/wav"))
    link = store.presign_get(keys[0], soon())
    assert httpx.get(link).status_code == 200
    run(store.delete(keys))
    assert httpx.get(link).status_code == 404
    assert run(store.list_keys("inputs/")) == []


class OneByteAtMost:
    """A stream that records how much any one read asked for."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.largest_read = 0

    def read(self, size: int = -1) -> bytes:
        self.largest_read = max(self.largest_read, size if size >= 0 else 1 << 62)
        return self._data.read(size)


def test_large_bodies_go_up_in_parts_never_whole(fake_r2: FakeR2, bucket: str) -> None:
    store = store_for(fake_r2, bucket, multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
    data = bytes(range(256)) * (11 * MiB // 256)
    body = OneByteAtMost(data)
    assert run(store.put("videos/big/1.mp4", body, "video/mp4")) == len(data)
    assert body.largest_read <= 5 * MiB
    info = run(store.head("videos/big/1.mp4"))
    assert info is not None and info.size_bytes == len(data)
    assert info.etag.endswith('-3"')  # S3's ETag of a three-part upload
    stored = fake_r2.client().get_object(Bucket=bucket, Key="videos/big/1.mp4")
    assert stored["Body"].read() == data and stored["ContentType"] == "video/mp4"


@pytest.fixture
def flaky(fake_r2: FakeR2) -> Iterator[list[str]]:
    """The next two requests to the server answer 503 SlowDown; yields what was refused."""
    refused: list[str] = []
    inner: WsgiApp = fake_r2.gate.app

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if len(refused) < 2:
            refused.append(environ["REQUEST_METHOD"])
            body = b"<Error><Code>SlowDown</Code><Message>slow down</Message></Error>"
            start_response("503 Service Unavailable", [("Content-Length", str(len(body)))])
            return [body]
        return inner(environ, start_response)

    fake_r2.gate.app = app
    try:
        yield refused
    finally:
        fake_r2.gate.app = inner


def test_store_calls_are_retried_with_backoff(store: S3BlobStore, flaky: list[str]) -> None:
    assert run(store.put("inputs/j/image.png", io.BytesIO(b"png"), "image/png")) == 3
    assert flaky == ["PUT", "PUT"]
    assert run(store.read_range("inputs/j/image.png", 10)) == b"png"


def test_the_bucket_tools_lifecycle_rule_covers_every_key_the_edge_writes(
    fake_r2: FakeR2, bucket: str
) -> None:
    env = {
        "R2_ACCOUNT_ID": "unused-with-endpoint",
        "R2_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "R2_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        "R2_BUCKET_NAME": bucket,
    }
    assert setup_bucket(["--origin", "*", "--endpoint", fake_r2.endpoint], env) == 0
    rules = fake_r2.client().get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert rules == lifecycle_rules()
    prefixes = [rule["Filter"]["Prefix"] for rule in rules]
    for key in ("inputs/j/image.png", "inputs/uploads/1-u/audio.wav", video_key("j", 1)):
        assert key.startswith(tuple(prefixes))


def test_s3_settings_are_required_and_named_with_blob_store_s3() -> None:
    with pytest.raises(SettingsError) as refused:
        EdgeSettings.from_env({**ENV, "BLOB_STORE": "S3"})
    assert set(refused.value.problems) == {"S3_BUCKET", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY"}
    settings = EdgeSettings.from_env(
        {**ENV, "BLOB_STORE": "s3", "S3_BUCKET": "b", "S3_ACCESS_KEY_ID": "k"}
        | {"S3_SECRET_ACCESS_KEY": "s3-secret-value"}
    )
    assert settings.s3_region == "auto" and settings.s3_endpoint_url is None
    assert "s3-secret-value" in settings.secrets() and "s3-secret-value" not in repr(settings)
    assert EdgeSettings.from_env(ENV).blob_store == "fs"


def test_the_local_edge_keeps_blobs_in_the_bucket_with_blob_store_s3(
    fake_r2: FakeR2, bucket: str, tmp_path: Path
) -> None:
    """Inline inputs land in the bucket, upload grants point at it, and the edge serves no
    `/blobs/` of its own."""
    env = {
        **ENV,
        "BLOB_STORE": "s3",
        "S3_ENDPOINT_URL": fake_r2.endpoint,
        "S3_BUCKET": bucket,
        "S3_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "S3_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
    }
    runtime = build_local(local_settings(env, "testserver.local", 80), tmp_path / "data")
    try:
        with TestClient(runtime.app, base_url="http://testserver.local:80") as client:
            job = submit(client)
            grant = client.post(
                "/uploads",
                json={"image": {"content_type": "image/png", "size_bytes": 10}},
                headers=AUTH,
            ).json()
            assert client.get("/blobs/inputs/x.png?expires=1&sig=x").status_code == 404
    finally:
        runtime.close()
    stored = fake_r2.client().list_objects_v2(Bucket=bucket)["Contents"]
    assert sorted(item["Key"] for item in stored) == [
        f"inputs/{job['job_id']}/audio.wav",
        f"inputs/{job['job_id']}/image.png",
    ]
    assert grant["image"]["url"].startswith(f"{fake_r2.endpoint}/{bucket}/inputs/uploads/")
    assert not (tmp_path / "data" / "blobs").exists()
