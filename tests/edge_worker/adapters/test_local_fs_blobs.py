"""FsBlobStore, UrlSigner and check_key: the local stand-in for R2 and its presigned URLs."""

import asyncio
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from edge_worker.adapters.local.fs_blobs import (
    FsBlobStore,
    InvalidKey,
    UrlSigner,
    check_key,
    etag_of,
)
from edge_worker.ports import BlobInfo
from tests.conftest import run

SECRET = "test-signing-secret"
EXPIRES_AT = datetime(2030, 1, 1, 0, 0, 0, tzinfo=UTC)
EXPIRES = int(EXPIRES_AT.timestamp())


@pytest.fixture
def store(tmp_path: Path) -> FsBlobStore:
    return FsBlobStore(tmp_path / "blobs", "http://edge.test:8787/", SECRET, max_put_bytes=1000)


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(".upload-")]


# --- put / head / read_range / delete ----------------------------------------------------


def test_root_is_created(tmp_path: Path) -> None:
    root = tmp_path / "deep" / "blobs"
    FsBlobStore(root, "http://x", SECRET, 10)
    assert root.is_dir()


def test_put_head_read_delete_round_trip(store: FsBlobStore) -> None:
    data = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    key = "inputs/job-1/image.png"
    size = run(store.put(key, io.BytesIO(data), "image/png"))
    assert size == len(data)
    assert (store.root / key).read_bytes() == data
    assert run(store.head(key)) == BlobInfo(key, len(data), etag_of(store.root / key))
    assert run(store.read_range(key, 8)) == data[:8]
    assert run(store.read_range(key, 0)) == b""
    assert run(store.read_range(key, 10 * len(data))) == data
    run(store.delete([key]))
    assert run(store.head(key)) is None
    assert not (store.root / key).exists()
    assert leftovers(store.root) == []


def test_put_overwrites(store: FsBlobStore) -> None:
    run(store.put("videos/j.mp4", io.BytesIO(b"first version, longer"), "video/mp4"))
    assert run(store.put("videos/j.mp4", io.BytesIO(b"second"), "video/mp4")) == 6
    assert run(store.read_range("videos/j.mp4", 100)) == b"second"


def test_put_empty_and_large_bodies(store: FsBlobStore) -> None:
    assert run(store.put("a/empty.bin", io.BytesIO(b""), "application/octet-stream")) == 0
    empty = BlobInfo("a/empty.bin", 0, etag_of(store.root / "a/empty.bin"))
    assert run(store.head("a/empty.bin")) == empty
    big = bytes(range(256)) * (3 * 4096 + 7)  # over 3 MiB: several copy chunks
    assert run(store.put("a/big.bin", io.BytesIO(big), "application/octet-stream")) == len(big)
    assert (store.root / "a/big.bin").read_bytes() == big


def test_head_of_missing_and_of_a_directory(store: FsBlobStore) -> None:
    assert run(store.head("inputs/nothing.png")) is None
    run(store.put("inputs/job/image.png", io.BytesIO(b"x"), "image/png"))
    assert run(store.head("inputs/job")) is None  # a "prefix" is not an object


def test_read_range_of_missing_raises(store: FsBlobStore) -> None:
    with pytest.raises(FileNotFoundError):
        run(store.read_range("missing.png", 4))


def test_delete_several_and_missing_keys(store: FsBlobStore) -> None:
    for name in ("a.png", "b.png", "c.png"):
        run(store.put(f"x/{name}", io.BytesIO(b"1"), "image/png"))
    run(store.delete(["x/a.png", "x/never.png", "x/c.png"]))
    assert run(store.head("x/a.png")) is None
    assert run(store.head("x/b.png")) is not None
    assert run(store.head("x/c.png")) is None
    run(store.delete([]))


class ExplodingBody(io.RawIOBase):
    """Yields some bytes, then fails like a dropped connection."""

    def __init__(self) -> None:
        self.calls = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        self.calls += 1
        if self.calls == 1:
            return b"partial data " * 100
        raise ConnectionResetError("client went away")


def test_failed_put_leaves_no_partial_file(store: FsBlobStore) -> None:
    key = "inputs/job-2/audio.wav"
    with pytest.raises(ConnectionResetError):
        run(store.put(key, ExplodingBody(), "audio/wav"))  # type: ignore[arg-type]
    assert not (store.root / key).exists()
    assert run(store.head(key)) is None
    assert leftovers(store.root) == []


def test_failed_overwrite_keeps_the_previous_object(store: FsBlobStore) -> None:
    key = "videos/job-3.mp4"
    run(store.put(key, io.BytesIO(b"complete old video"), "video/mp4"))
    with pytest.raises(ConnectionResetError):
        run(store.put(key, ExplodingBody(), "video/mp4"))  # type: ignore[arg-type]
    assert (store.root / key).read_bytes() == b"complete old video"
    assert leftovers(store.root) == []


# --- keys --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "videos/0b9c.mp4",
        "inputs/6f1e2d3c-aaaa-4bbb-8ccc-000000000000/image.png",
        "inputs/x/audio.wav",
        "a",
        "_underscore",
        "-dash/b.c.d",
        "a../b",  # dots inside a segment are fine, only a leading dot is refused
        "a" * 512,
    ],
)
def test_check_key_accepts_server_built_keys(key: str) -> None:
    assert check_key(key) == key


@pytest.mark.parametrize(
    "key",
    [
        "../x",
        "/abs",
        "/etc/passwd",
        "a/../../b",
        "a/..",
        "..",
        ".",
        "./a",
        "",
        ".hidden",
        "a/.hidden",
        "a//b",
        "a/",
        "a\\b",
        "..\\x",
        "a b",
        "a/b?c",
        "a%2F..",
        "é.png",
        "a\x00b",
        "a" * 513,
    ],
)
def test_check_key_rejects_traversal_and_odd_keys(key: str) -> None:
    with pytest.raises(InvalidKey):
        check_key(key)


@pytest.mark.parametrize("key", ["a\n", "videos/x.mp4\n"])
def test_check_key_rejects_a_trailing_newline(key: str) -> None:
    """`re.match` with `$` also matches just before a final newline, so these slip through."""
    with pytest.raises(InvalidKey):
        check_key(key)


def test_invalid_key_is_a_value_error() -> None:
    assert issubclass(InvalidKey, ValueError)


@pytest.mark.parametrize("key", ["../escape.png", "/abs.png", ".hidden"])
def test_every_store_operation_refuses_bad_keys(store: FsBlobStore, key: str) -> None:
    with pytest.raises(InvalidKey):
        run(store.put(key, io.BytesIO(b"x"), "image/png"))
    with pytest.raises(InvalidKey):
        run(store.head(key))
    with pytest.raises(InvalidKey):
        run(store.read_range(key, 1))
    with pytest.raises(InvalidKey):
        run(store.delete([key]))
    with pytest.raises(InvalidKey):
        store.presign_get(key, EXPIRES_AT)
    with pytest.raises(InvalidKey):
        store.presign_put(key, EXPIRES_AT, "image/png")
    assert not (store.root.parent / "escape.png").exists()


# --- signing -----------------------------------------------------------------------------


def test_signature_is_deterministic_hex_sha256() -> None:
    signer = UrlSigner(SECRET)
    sig = signer.signature("GET", "k", EXPIRES, "", 0)
    assert sig == signer.signature("GET", "k", EXPIRES, "", 0)
    assert len(sig) == 64 and int(sig, 16) >= 0
    assert UrlSigner("other").signature("GET", "k", EXPIRES, "", 0) != sig


def test_verify_accepts_a_valid_signature_until_expiry() -> None:
    signer = UrlSigner(SECRET)
    sig = signer.signature("PUT", "inputs/j/image.png", EXPIRES, "image/png", 1000)
    args = ("PUT", "inputs/j/image.png", EXPIRES, "image/png", 1000, sig)
    assert signer.verify(*args, now=EXPIRES - 3600)
    assert signer.verify(*args, now=EXPIRES)
    assert not signer.verify(*args, now=EXPIRES + 1)


@pytest.mark.parametrize(
    "change",
    [
        {"method": "GET"},
        {"key": "inputs/j/image.jpg"},
        {"key": "inputs/other/image.png"},
        {"expires": EXPIRES + 1},
        {"expires": EXPIRES - 1},
        {"content_type": "image/jpeg"},
        {"content_type": ""},
        {"max_bytes": 1001},
        {"max_bytes": 0},
    ],
    ids=lambda c: next(iter(c)),
)
def test_verify_fails_when_any_signed_field_is_tampered(change: dict[str, Any]) -> None:
    signer = UrlSigner(SECRET)
    signed = {
        "method": "PUT",
        "key": "inputs/j/image.png",
        "expires": EXPIRES,
        "content_type": "image/png",
        "max_bytes": 1000,
    }
    sig = signer.signature(**signed)
    assert signer.verify(**signed, sig=sig, now=0)
    assert not signer.verify(**{**signed, **change}, sig=sig, now=0)


@pytest.mark.parametrize("bad", ["", "0" * 64, "zz", "A" * 64])
def test_verify_fails_for_garbage_signatures(bad: str) -> None:
    signer = UrlSigner(SECRET)
    assert not signer.verify("GET", "k", EXPIRES, "", 0, bad, now=0)


def test_verify_fails_with_another_secret() -> None:
    sig = UrlSigner("one").signature("GET", "k", EXPIRES, "", 0)
    assert not UrlSigner("two").verify("GET", "k", EXPIRES, "", 0, sig, now=0)


def test_flipping_one_hex_digit_fails() -> None:
    signer = UrlSigner(SECRET)
    sig = signer.signature("GET", "k", EXPIRES, "", 0)
    flipped = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    assert not signer.verify("GET", "k", EXPIRES, "", 0, flipped, now=0)


# --- presigned URLs ----------------------------------------------------------------------


def test_presign_get_url(store: FsBlobStore) -> None:
    url = store.presign_get("videos/job-1.mp4", EXPIRES_AT)
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == "http://edge.test:8787"  # trailing / dropped
    assert parts.path == "/blobs/videos/job-1.mp4"
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert set(query) == {"expires", "sig"}
    assert int(query["expires"]) == EXPIRES
    assert store.signer.verify("GET", "videos/job-1.mp4", EXPIRES, "", 0, query["sig"], now=EXPIRES)


def test_presign_put_url_signs_content_type_and_size_limit(store: FsBlobStore) -> None:
    url = store.presign_put("inputs/j/audio.mp3", EXPIRES_AT, "audio/mpeg")
    parts = urlsplit(url)
    assert unquote(parts.path) == "/blobs/inputs/j/audio.mp3"
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert set(query) == {"expires", "sig", "content_type", "max_bytes"}
    assert query["content_type"] == "audio/mpeg"
    assert int(query["max_bytes"]) == store.max_put_bytes == 1000
    assert store.signer.verify(
        "PUT", "inputs/j/audio.mp3", EXPIRES, "audio/mpeg", 1000, query["sig"], now=0
    )
    # The same signature is no good as a GET.
    assert not store.signer.verify("GET", "inputs/j/audio.mp3", EXPIRES, "", 0, query["sig"], 0)


def test_presign_expiry_is_whole_seconds(store: FsBlobStore) -> None:
    url = store.presign_get("k", EXPIRES_AT + timedelta(microseconds=999_999))
    query = parse_qs(urlsplit(url).query)
    assert query["expires"] == [str(EXPIRES)]


def test_list_keys_by_prefix(tmp_path: Path) -> None:
    store = FsBlobStore(tmp_path / "b", "http://x", "s" * 20, 100)
    for key in ("videos/a/1.mp4", "videos/a/2.mp4", "videos/ab/1.mp4", "inputs/a/image.png"):
        asyncio.run(store.put(key, io.BytesIO(b"x"), "video/mp4"))
    (tmp_path / "b" / "videos" / "a" / ".upload-tmp").write_bytes(b"partial")
    assert asyncio.run(store.list_keys("videos/a/")) == ["videos/a/1.mp4", "videos/a/2.mp4"]
    assert asyncio.run(store.list_keys("videos/a")) == [
        "videos/a/1.mp4",
        "videos/a/2.mp4",
        "videos/ab/1.mp4",
    ]
    assert asyncio.run(store.list_keys("nothing/here/")) == []


def test_delete_removes_folders_left_empty(tmp_path: Path) -> None:
    store = FsBlobStore(tmp_path / "b", "http://x", "s" * 20, 100)
    for key in ("inputs/j/image.png", "inputs/j/audio.wav", "inputs/k/image.png"):
        asyncio.run(store.put(key, io.BytesIO(b"x"), "image/png"))
    asyncio.run(store.delete(["inputs/j/image.png"]))
    assert (tmp_path / "b" / "inputs" / "j").is_dir()
    asyncio.run(store.delete(["inputs/j/audio.wav", "inputs/missing/x.png"]))
    assert not (tmp_path / "b" / "inputs" / "j").exists()
    assert (tmp_path / "b" / "inputs" / "k").is_dir()
    asyncio.run(store.delete(["inputs/k/image.png"]))
    assert (tmp_path / "b").is_dir()
    assert not (tmp_path / "b" / "inputs").exists()
