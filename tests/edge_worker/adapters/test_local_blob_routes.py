"""`/blobs/{key}` over HTTP: signed GET and PUT, as agents and clients use them."""

import asyncio
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from edge_worker.adapters.local.blob_routes import blob_routes
from edge_worker.adapters.local.fs_blobs import FsBlobStore
from edge_worker.http.errors import exception_handlers

FUTURE = datetime(2099, 1, 1, tzinfo=UTC)
PAST = datetime(2000, 1, 1, tzinfo=UTC)
MAX_PUT = 4 * 1024 * 1024


@pytest.fixture
def store(tmp_path: Path) -> FsBlobStore:
    return FsBlobStore(tmp_path / "blobs", "http://edge.test:8787", "route-secret", MAX_PUT)


@pytest.fixture
def client(store: FsBlobStore) -> Iterator[TestClient[Litestar]]:
    app = Litestar(route_handlers=[blob_routes(store)], exception_handlers=exception_handlers)
    with TestClient(app) as c:
        yield c


def local(url: str) -> str:
    """The path and query of a signed URL, for the in-process test client."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def with_query(url: str, **changes: Any) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update({k: str(v) for k, v in changes.items()})
    return f"{parts.path}?{urlencode(query)}"


def put_object(store: FsBlobStore, key: str, data: bytes) -> None:
    asyncio.run(store.put(key, io.BytesIO(data), "application/octet-stream"))


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    return body["error"]


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(".upload-")]


# --- GET ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "content_type"),
    [
        ("videos/job-1.mp4", "video/mp4"),
        ("inputs/job-1/image.png", "image/png"),
        ("inputs/job-1/image.jpg", "image/jpeg"),
        ("inputs/job-1/audio.wav", "audio/wav"),
        ("inputs/job-1/audio.mp3", "audio/mpeg"),
        ("misc/data.bin", "application/octet-stream"),
    ],
)
def test_signed_get_returns_the_bytes_with_the_right_content_type(
    client: TestClient[Litestar], store: FsBlobStore, key: str, content_type: str
) -> None:
    data = bytes(range(256)) * 40
    put_object(store, key, data)
    response = client.get(local(store.presign_get(key, FUTURE)))
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-type"].split(";")[0] == content_type
    assert int(response.headers["content-length"]) == len(data)


def test_get_with_tampered_signature_is_401(
    client: TestClient[Litestar], store: FsBlobStore
) -> None:
    put_object(store, "videos/a.mp4", b"video")
    url = store.presign_get("videos/a.mp4", FUTURE)
    sig = parse_qs(urlsplit(url).query)["sig"][0]
    flipped = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    response = client.get(with_query(url, sig=flipped))
    assert_error(response, 401, "UNAUTHORIZED")
    assert response.headers["www-authenticate"] == "Bearer"


def test_get_with_tampered_expiry_is_401(client: TestClient[Litestar], store: FsBlobStore) -> None:
    put_object(store, "videos/a.mp4", b"video")
    url = store.presign_get("videos/a.mp4", FUTURE)
    expires = int(parse_qs(urlsplit(url).query)["expires"][0])
    assert_error(client.get(with_query(url, expires=expires + 1)), 401, "UNAUTHORIZED")


def test_signature_for_one_key_does_not_open_another(
    client: TestClient[Litestar], store: FsBlobStore
) -> None:
    put_object(store, "videos/mine.mp4", b"mine")
    put_object(store, "videos/theirs.mp4", b"theirs")
    url = store.presign_get("videos/mine.mp4", FUTURE)
    stolen = url.replace("/videos/mine.mp4", "/videos/theirs.mp4")
    assert_error(client.get(local(stolen)), 401, "UNAUTHORIZED")


def test_expired_get_is_401(client: TestClient[Litestar], store: FsBlobStore) -> None:
    put_object(store, "videos/old.mp4", b"video")
    response = client.get(local(store.presign_get("videos/old.mp4", PAST)))
    assert_error(response, 401, "UNAUTHORIZED")


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?sig=abc",
        "?expires=4070908800",
        "?expires=soon&sig=abc",
        "?expires=4070908800&sig=",
    ],
)
def test_unsigned_or_malformed_get_is_401(
    client: TestClient[Litestar], store: FsBlobStore, query: str
) -> None:
    put_object(store, "videos/a.mp4", b"video")
    assert_error(client.get(f"/blobs/videos/a.mp4{query}"), 401, "UNAUTHORIZED")


def test_get_of_missing_object_is_404(client: TestClient[Litestar], store: FsBlobStore) -> None:
    response = client.get(local(store.presign_get("videos/never.mp4", FUTURE)))
    assert_error(response, 404, "NOT_FOUND")


def test_get_of_a_deleted_object_is_404(client: TestClient[Litestar], store: FsBlobStore) -> None:
    put_object(store, "videos/gone.mp4", b"video")
    url = local(store.presign_get("videos/gone.mp4", FUTURE))
    assert client.get(url).status_code == 200
    asyncio.run(store.delete(["videos/gone.mp4"]))
    assert_error(client.get(url), 404, "NOT_FOUND")


# --- HEAD and ranges: a browser's <video> seeks --------------------------------------------

VIDEO = bytes(range(256)) * 4  # 1024 bytes, each position's value tells where it came from


def test_head_describes_the_object_without_a_body(
    client: TestClient[Litestar], store: FsBlobStore
) -> None:
    put_object(store, "videos/v.mp4", VIDEO)
    response = client.head(local(store.presign_get("videos/v.mp4", FUTURE)))
    assert response.status_code == 200
    assert response.content == b""
    assert int(response.headers["content-length"]) == len(VIDEO)
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers["accept-ranges"] == "bytes"


def test_head_keeps_the_signed_url_check(client: TestClient[Litestar], store: FsBlobStore) -> None:
    put_object(store, "videos/v.mp4", VIDEO)
    assert client.head("/blobs/videos/v.mp4").status_code == 401
    assert client.head(local(store.presign_get("videos/v.mp4", PAST))).status_code == 401
    put_url = local(store.presign_put("videos/v.mp4", FUTURE, "video/mp4"))
    assert client.head(put_url).status_code == 401
    assert client.head(local(store.presign_get("videos/none.mp4", FUTURE))).status_code == 404


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=1000-5000", 1000, 1023),  # clipped to the object
        ("bytes=1000-", 1000, 1023),
        ("bytes=-24", 1000, 1023),
        ("bytes=-5000", 0, 1023),  # a suffix longer than the object is all of it
        ("bytes=1023-1023", 1023, 1023),
    ],
)
def test_a_single_range_is_206_with_its_bytes(
    client: TestClient[Litestar], store: FsBlobStore, header: str, first: int, last: int
) -> None:
    put_object(store, "videos/v.mp4", VIDEO)
    response = client.get(
        local(store.presign_get("videos/v.mp4", FUTURE)), headers={"Range": header}
    )
    assert response.status_code == 206
    assert response.content == VIDEO[first : last + 1]
    assert response.headers["content-range"] == f"bytes {first}-{last}/{len(VIDEO)}"
    assert int(response.headers["content-length"]) == last - first + 1
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers["accept-ranges"] == "bytes"


@pytest.mark.parametrize("header", ["bytes=1024-", "bytes=5000-6000", "bytes=-0"])
def test_an_unsatisfiable_range_is_416(
    client: TestClient[Litestar], store: FsBlobStore, header: str
) -> None:
    put_object(store, "videos/v.mp4", VIDEO)
    response = client.get(
        local(store.presign_get("videos/v.mp4", FUTURE)), headers={"Range": header}
    )
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(VIDEO)}"
    assert response.content == b""


@pytest.mark.parametrize(
    "header", ["bytes=9-3", "bytes=-", "bytes=0-1,5-6", "items=0-9", "bytes=a-b", "0-9"]
)
def test_an_invalid_range_is_ignored(
    client: TestClient[Litestar], store: FsBlobStore, header: str
) -> None:
    put_object(store, "videos/v.mp4", VIDEO)
    response = client.get(
        local(store.presign_get("videos/v.mp4", FUTURE)), headers={"Range": header}
    )
    assert (response.status_code, response.content) == (200, VIDEO)
    assert response.headers["accept-ranges"] == "bytes"


def test_a_range_of_a_large_object_streams_across_chunks(
    client: TestClient[Litestar], store: FsBlobStore
) -> None:
    data = bytes(range(251)) * 8000  # ~2 MB, several read chunks
    put_object(store, "videos/big.mp4", data)
    url = local(store.presign_get("videos/big.mp4", FUTURE))
    response = client.get(url, headers={"Range": "bytes=100000-1700000"})
    assert response.status_code == 206
    assert response.content == data[100000:1700001]


def test_a_range_needs_the_signed_url_too(client: TestClient[Litestar], store: FsBlobStore) -> None:
    put_object(store, "videos/v.mp4", VIDEO)
    response = client.get("/blobs/videos/v.mp4", headers={"Range": "bytes=0-9"})
    assert_error(response, 401, "UNAUTHORIZED")


@pytest.mark.parametrize(
    "raw_key",
    ["..%2Fsecret.txt", "%2E%2E/secret.txt", "%2E%2E%2Fsecret.txt", "a/%2E%2E/%2E%2E/secret.txt"],
)
def test_traversal_through_the_url_is_refused_even_when_signed(
    client: TestClient[Litestar], store: FsBlobStore, raw_key: str
) -> None:
    secret = store.root.parent / "secret.txt"
    secret.write_text("do not serve")
    key = unquote(raw_key)
    expires = int(FUTURE.timestamp())
    sig = store.signer.signature("GET", key, expires, "", 0)
    response = client.get(f"/blobs/{raw_key}?expires={expires}&sig={sig}")
    assert response.status_code in (401, 404)
    assert b"do not serve" not in response.content


def test_double_slash_key_stays_inside_the_root(
    client: TestClient[Litestar], store: FsBlobStore
) -> None:
    (store.root.parent / "outside.txt").write_text("outside")
    url = store.presign_get("outside.txt", FUTURE)
    response = client.get(local(url).replace("/blobs/outside.txt", "/blobs//outside.txt"))
    assert_error(response, 404, "NOT_FOUND")


# --- PUT ---------------------------------------------------------------------------------


def test_signed_put_stores_the_body(client: TestClient[Litestar], store: FsBlobStore) -> None:
    url = store.presign_put("inputs/j/image.png", FUTURE, "image/png")
    body = b"\x89PNG\r\n\x1a\n" + b"pixels" * 100
    response = client.put(local(url), content=body, headers={"Content-Type": "image/png"})
    assert response.status_code == 200, response.text
    assert response.json() == {"key": "inputs/j/image.png", "size_bytes": len(body)}
    assert (store.root / "inputs/j/image.png").read_bytes() == body
    assert leftovers(store.root) == []
    # And it can be read back through a GET URL.
    got = client.get(local(store.presign_get("inputs/j/image.png", FUTURE)))
    assert got.content == body and got.headers["content-type"] == "image/png"


def test_streamed_put_of_a_few_mib(client: TestClient[Litestar], store: FsBlobStore) -> None:
    chunk = bytes(range(256)) * 256  # 64 KiB
    count = 48  # 3 MiB

    def body() -> Iterator[bytes]:
        for n in range(count):
            yield chunk[n % 256 :] + chunk[: n % 256]

    url = store.presign_put("videos/big.mp4", FUTURE, "video/mp4")
    response = client.put(local(url), content=body(), headers={"Content-Type": "video/mp4"})
    assert response.status_code == 200, response.text
    assert response.json()["size_bytes"] == count * len(chunk)
    assert (store.root / "videos/big.mp4").read_bytes() == b"".join(body())
    assert leftovers(store.root) == []


def test_put_is_not_capped_by_an_app_wide_json_body_limit(store: FsBlobStore) -> None:
    """`create_app` caps request bodies at 1 MiB; the blob PUT route must lift that cap."""
    app = Litestar(
        route_handlers=[blob_routes(store)],
        exception_handlers=exception_handlers,
        request_max_body_size=1024 * 1024,
    )
    body = b"v" * (3 * 1024 * 1024)
    with TestClient(app) as c:
        url = local(store.presign_put("videos/app.mp4", FUTURE, "video/mp4"))
        response = c.put(url, content=body, headers={"Content-Type": "video/mp4"})
    assert response.status_code == 200, response.text
    assert (store.root / "videos/app.mp4").stat().st_size == len(body)


def test_put_body_of_exactly_max_bytes_is_accepted(tmp_path: Path) -> None:
    small = FsBlobStore(tmp_path / "b", "http://edge.test", "s", max_put_bytes=100)
    app = Litestar(route_handlers=[blob_routes(small)], exception_handlers=exception_handlers)
    with TestClient(app) as c:
        url = local(small.presign_put("a/b.wav", FUTURE, "audio/wav"))
        ok = c.put(url, content=b"x" * 100, headers={"Content-Type": "audio/wav"})
        assert ok.status_code == 200
        assert ok.json()["size_bytes"] == 100


def test_put_over_max_bytes_is_413_and_stores_nothing(tmp_path: Path) -> None:
    small = FsBlobStore(tmp_path / "b", "http://edge.test", "s", max_put_bytes=100_000)
    app = Litestar(route_handlers=[blob_routes(small)], exception_handlers=exception_handlers)

    def body() -> Iterator[bytes]:
        for _ in range(20):
            yield b"y" * 16_384

    with TestClient(app) as c:
        url = local(small.presign_put("inputs/j/audio.wav", FUTURE, "audio/wav"))
        response = c.put(url, content=body(), headers={"Content-Type": "audio/wav"})
        assert_error(response, 413, "PAYLOAD_TOO_LARGE")
        one_over = c.put(url, content=b"z" * 100_001, headers={"Content-Type": "audio/wav"})
        assert assert_error(one_over, 413, "PAYLOAD_TOO_LARGE")["details"] == {
            "limit_bytes": 100_000
        }
    assert not (small.root / "inputs/j/audio.wav").exists()
    assert leftovers(small.root) == []


def test_oversized_put_keeps_the_previous_object(tmp_path: Path) -> None:
    small = FsBlobStore(tmp_path / "b", "http://edge.test", "s", max_put_bytes=10)
    put_object(small, "a/x.png", b"original")
    app = Litestar(route_handlers=[blob_routes(small)], exception_handlers=exception_handlers)
    with TestClient(app) as c:
        url = local(small.presign_put("a/x.png", FUTURE, "image/png"))
        response = c.put(url, content=b"q" * 11, headers={"Content-Type": "image/png"})
        assert response.status_code == 413
    assert (small.root / "a/x.png").read_bytes() == b"original"
    assert leftovers(small.root) == []


@pytest.mark.parametrize("sent", ["image/jpeg", "image/png; charset=binary", "IMAGE/PNG", None])
def test_put_with_a_content_type_other_than_the_signed_one_is_400(
    client: TestClient[Litestar], store: FsBlobStore, sent: str | None
) -> None:
    url = store.presign_put("inputs/j/image.png", FUTURE, "image/png")
    headers = {"Content-Type": sent} if sent else {}
    response = client.put(local(url), content=b"data", headers=headers)
    error = assert_error(response, 400, "INVALID_INPUT")
    assert error["details"] == {
        "errors": [
            {"field": "Content-Type", "message": "Content-Type must be image/png, as signed"}
        ]
    }
    assert not (store.root / "inputs/j/image.png").exists()


def test_put_with_a_tampered_content_type_or_limit_is_401(
    client: TestClient[Litestar], store: FsBlobStore
) -> None:
    url = store.presign_put("inputs/j/image.png", FUTURE, "image/png")
    for change in ({"content_type": "image/jpeg"}, {"max_bytes": MAX_PUT * 10}):
        ct = change.get("content_type", "image/png")
        response = client.put(with_query(url, **change), content=b"d", headers={"Content-Type": ct})
        assert_error(response, 401, "UNAUTHORIZED")
    assert not (store.root / "inputs/j/image.png").exists()


def test_expired_put_is_401(client: TestClient[Litestar], store: FsBlobStore) -> None:
    url = store.presign_put("inputs/j/image.png", PAST, "image/png")
    response = client.put(local(url), content=b"d", headers={"Content-Type": "image/png"})
    assert_error(response, 401, "UNAUTHORIZED")
    assert not (store.root / "inputs/j/image.png").exists()


def test_unsigned_put_is_401(client: TestClient[Litestar], store: FsBlobStore) -> None:
    response = client.put(
        "/blobs/inputs/j/image.png", content=b"d", headers={"Content-Type": "image/png"}
    )
    assert_error(response, 401, "UNAUTHORIZED")
    assert not (store.root / "inputs/j/image.png").exists()


def test_put_url_cannot_be_used_for_get(client: TestClient[Litestar], store: FsBlobStore) -> None:
    put_object(store, "inputs/j/image.png", b"existing")
    url = store.presign_put("inputs/j/image.png", FUTURE, "image/png")
    assert_error(client.get(local(url)), 401, "UNAUTHORIZED")


def test_get_url_cannot_be_used_for_put(client: TestClient[Litestar], store: FsBlobStore) -> None:
    put_object(store, "videos/j.mp4", b"the real video")
    url = store.presign_get("videos/j.mp4", FUTURE)
    for headers in ({}, {"Content-Type": "video/mp4"}):
        response = client.put(local(url), content=b"overwritten!", headers=headers)
        assert_error(response, 401, "UNAUTHORIZED")
    assert (store.root / "videos/j.mp4").read_bytes() == b"the real video"


def test_other_methods_are_405(client: TestClient[Litestar], store: FsBlobStore) -> None:
    put_object(store, "videos/j.mp4", b"v")
    url = local(store.presign_get("videos/j.mp4", FUTURE))
    assert_error(client.delete(url), 405, "METHOD_NOT_ALLOWED")
    assert (store.root / "videos/j.mp4").exists()
