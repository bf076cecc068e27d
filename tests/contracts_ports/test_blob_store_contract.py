"""The BlobStore contract: FsBlobStore, R2BlobStore (on real local R2) and S3BlobStore (on
moto's S3 server) behave alike."""

import io
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote, urlsplit

import pytest

from edge_worker.ports import BlobInfo, BlobStore
from tests.conftest import run

DATA = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64


def put(store: BlobStore, key: str, data: bytes, content_type: str = "image/png") -> int:
    return run(store.put(key, io.BytesIO(data), content_type))


def test_put_returns_the_size_and_head_reports_it(blob_store: BlobStore, prefix: str) -> None:
    key = f"{prefix}inputs/image.png"
    assert put(blob_store, key, DATA) == len(DATA)
    info = run(blob_store.head(key))
    assert info is not None and info == BlobInfo(key, len(DATA), info.etag)
    assert len(info.etag) > 2 and info.etag[0] == info.etag[-1] == '"'
    assert run(blob_store.head(key)) == info


def test_put_reads_the_body_from_where_it_stands(blob_store: BlobStore, prefix: str) -> None:
    body = io.BytesIO(b"header" + DATA)
    body.seek(6)
    assert run(blob_store.put(f"{prefix}a.png", body, "image/png")) == len(DATA)
    assert run(blob_store.read_range(f"{prefix}a.png", len(DATA))) == DATA


def test_put_overwrites(blob_store: BlobStore, prefix: str) -> None:
    key = f"{prefix}video.mp4"
    put(blob_store, key, b"first version, longer", "video/mp4")
    first = run(blob_store.head(key))
    assert put(blob_store, key, b"second", "video/mp4") == 6
    assert run(blob_store.read_range(key, 100)) == b"second"
    assert run(blob_store.head(key)) not in (first, None)


def test_head_of_a_missing_object_is_none(blob_store: BlobStore, prefix: str) -> None:
    assert run(blob_store.head(f"{prefix}missing.png")) is None


def test_read_range_returns_the_first_bytes(blob_store: BlobStore, prefix: str) -> None:
    key = f"{prefix}audio.wav"
    put(blob_store, key, DATA, "audio/wav")
    assert run(blob_store.read_range(key, 12)) == DATA[:12]
    assert run(blob_store.read_range(key, 10 * len(DATA))) == DATA
    assert run(blob_store.read_range(key, 0)) == b""


def test_read_range_of_an_empty_object_is_empty(blob_store: BlobStore, prefix: str) -> None:
    key = f"{prefix}empty.wav"
    assert put(blob_store, key, b"", "audio/wav") == 0
    info = run(blob_store.head(key))
    assert info is not None and info.size_bytes == 0
    assert run(blob_store.read_range(key, 16)) == b""


def test_read_range_of_a_missing_object_raises(blob_store: BlobStore, prefix: str) -> None:
    with pytest.raises(FileNotFoundError):
        run(blob_store.read_range(f"{prefix}missing.wav", 16))


def test_list_keys_is_sorted_and_limited_to_the_prefix(blob_store: BlobStore, prefix: str) -> None:
    for key in ("videos/j1/2.mp4", "videos/j1/1.mp4", "videos/j10/1.mp4", "inputs/j1/image.png"):
        put(blob_store, f"{prefix}{key}", b"x")
    assert run(blob_store.list_keys(f"{prefix}videos/j1/")) == [
        f"{prefix}videos/j1/1.mp4",
        f"{prefix}videos/j1/2.mp4",
    ]
    assert run(blob_store.list_keys(f"{prefix}videos/j1")) == [
        f"{prefix}videos/j1/1.mp4",
        f"{prefix}videos/j1/2.mp4",
        f"{prefix}videos/j10/1.mp4",
    ]
    assert run(blob_store.list_keys(f"{prefix}nothing/")) == []


def test_delete_removes_the_keys_and_ignores_missing_ones(
    blob_store: BlobStore, prefix: str
) -> None:
    keys = [f"{prefix}inputs/image.png", f"{prefix}inputs/audio.wav", f"{prefix}videos/1.mp4"]
    for key in keys:
        put(blob_store, key, b"x")
    run(blob_store.delete([*keys[:2], f"{prefix}never-stored.png"]))
    assert run(blob_store.list_keys(prefix)) == [keys[2]]
    assert run(blob_store.head(keys[0])) is None
    run(blob_store.delete([]))
    assert run(blob_store.list_keys(prefix)) == [keys[2]]


def test_presigned_urls_name_the_object(blob_store: BlobStore, prefix: str) -> None:
    key = f"{prefix}videos/1.mp4"
    expires = datetime.now(UTC) + timedelta(hours=1)
    get_url = blob_store.presign_get(key, expires)
    put_url = blob_store.presign_put(key, expires, "video/mp4")
    upload_url = blob_store.presign_upload(key, expires, "video/mp4", 1000)
    for url in (get_url, put_url, upload_url):
        parts = urlsplit(url)
        assert parts.scheme in ("http", "https") and parts.netloc
        assert unquote(parts.path).endswith(f"/{key}")
    assert len({get_url, put_url, upload_url}) == 3
