"""Upload links over HTTP: each writes one object, once, of exactly the declared size."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from litestar.testing import TestClient

from edge_worker.local import LocalRuntime
from tests.conftest import png_bytes, run
from tests.edge_worker.conftest import invalid_fields
from tests.edge_worker.test_uploads import generate, grant, uploaded

MiB = 1024 * 1024


def image_link(client: TestClient, size_bytes: int) -> dict:
    return grant(client, image={"content_type": "image/png", "size_bytes": size_bytes})["image"]


def key_of(link: dict) -> str:
    return urlsplit(link["url"]).path.removeprefix("/blobs/")


def nothing_stored(runtime: LocalRuntime, link: dict) -> bool:
    """No object, and no temporary file left beside where it would be."""
    folder = runtime.blobs.path_of(key_of(link)).parent
    return run(runtime.blobs.head(key_of(link))) is None and not (
        folder.exists() and any(folder.iterdir())
    )


def test_a_body_over_the_declared_size_is_413(client: TestClient, runtime: LocalRuntime) -> None:
    link = image_link(client, 10 * MiB)
    response = client.put(link["url"], content=bytes(11 * MiB), headers=link["headers"])
    assert (response.status_code, response.json()["error"]["code"]) == (413, "PAYLOAD_TOO_LARGE")
    assert response.json()["error"]["details"] == {"limit_bytes": 10 * MiB}
    assert nothing_stored(runtime, link)


def test_a_body_of_another_length_is_400(client: TestClient, runtime: LocalRuntime) -> None:
    link = image_link(client, 1000)
    shorter = client.put(link["url"], content=bytes(999), headers=link["headers"])
    assert invalid_fields(shorter) == ["Content-Length"]
    assert "1000" in shorter.json()["error"]["message"]
    longer = client.put(link["url"], content=bytes(1001), headers=link["headers"])
    assert (longer.status_code, longer.json()["error"]["code"]) == (413, "PAYLOAD_TOO_LARGE")
    assert nothing_stored(runtime, link)


def test_a_body_without_its_length_is_400(client: TestClient, runtime: LocalRuntime) -> None:
    link = image_link(client, 1000)

    def chunks() -> Iterator[bytes]:
        yield bytes(500)
        yield bytes(500)

    response = client.put(link["url"], content=chunks(), headers=link["headers"])
    assert invalid_fields(response) == ["Content-Length"]
    assert nothing_stored(runtime, link)


def test_a_body_shorter_than_its_content_length_is_400(
    client: TestClient, runtime: LocalRuntime
) -> None:
    link = image_link(client, 1000)

    def chunks() -> Iterator[bytes]:
        yield bytes(600)

    headers = {**link["headers"], "Content-Length": "1000"}
    response = client.put(link["url"], content=chunks(), headers=headers)
    assert invalid_fields(response) == ["Content-Length"]
    assert "600 of the 1000" in response.json()["error"]["message"]
    assert nothing_stored(runtime, link)


def test_a_body_longer_than_its_content_length_is_413(
    client: TestClient, runtime: LocalRuntime
) -> None:
    """The stream is counted too, not only the header."""
    link = image_link(client, 1000)

    def chunks() -> Iterator[bytes]:
        yield bytes(800)
        yield bytes(800)

    headers = {**link["headers"], "Content-Length": "1000"}
    response = client.put(link["url"], content=chunks(), headers=headers)
    assert (response.status_code, response.json()["error"]["code"]) == (413, "PAYLOAD_TOO_LARGE")
    assert nothing_stored(runtime, link)


def test_a_link_writes_once(client: TestClient, runtime: LocalRuntime) -> None:
    image = png_bytes()
    link = image_link(client, len(image))
    assert client.put(link["url"], content=image, headers=link["headers"]).status_code == 200
    again = client.put(link["url"], content=image[::-1], headers=link["headers"])
    assert (again.status_code, again.json()["error"]["code"]) == (409, "CONFLICT")
    path = runtime.blobs.path_of(key_of(link))
    assert path.read_bytes() == image
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_the_signed_size_cannot_be_changed(client: TestClient) -> None:
    link = image_link(client, 1000)
    tampered = link["url"].replace("size_bytes=1000", "size_bytes=2000")
    response = client.put(tampered, content=bytes(2000), headers=link["headers"])
    assert (response.status_code, response.json()["error"]["code"]) == (401, "UNAUTHORIZED")


def test_inputs_cannot_be_swapped_after_generate(client: TestClient, runtime: LocalRuntime) -> None:
    """The issue's attack: a second PUT through the same link once /generate accepted it."""
    grants = uploaded(client)
    assert generate(client, grants).status_code == 200
    link = grants["image"]
    swap = client.put(link["url"], content=bytes(len(png_bytes())), headers=link["headers"])
    assert (swap.status_code, swap.json()["error"]["code"]) == (409, "CONFLICT")
    assert runtime.blobs.path_of(key_of(link)).read_bytes() == png_bytes()


def test_every_read_of_an_upload_carries_the_etag_head_reports(
    client: TestClient, runtime: LocalRuntime
) -> None:
    image = png_bytes()
    link = image_link(client, len(image))
    client.put(link["url"], content=image, headers=link["headers"])
    info = run(runtime.blobs.head(key_of(link)))
    assert info is not None
    url = runtime.blobs.presign_get(key_of(link), datetime.now(UTC) + timedelta(minutes=1))
    whole, ranged = client.get(url), client.get(url, headers={"Range": "bytes=0-3"})
    described = client.head(url)
    assert [r.status_code for r in (whole, ranged, described)] == [200, 206, 200]
    assert {r.headers["etag"] for r in (whole, ranged, described)} == {info.etag}


def test_of_two_racing_puts_the_first_to_finish_wins(
    client: TestClient, runtime: LocalRuntime
) -> None:
    image = png_bytes()
    link = image_link(client, len(image))
    path = runtime.blobs.path_of(key_of(link))

    def slow_body() -> Iterator[bytes]:
        yield image[:100]
        path.write_bytes(image)  # the other PUT finishes while this one streams
        yield image[100:]

    headers = {**link["headers"], "Content-Length": str(len(image))}
    late = client.put(link["url"], content=slow_body(), headers=headers)
    assert (late.status_code, late.json()["error"]["code"]) == (409, "CONFLICT")
    assert path.read_bytes() == image
    assert [p.name for p in path.parent.iterdir()] == [path.name]
