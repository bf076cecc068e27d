"""The playground's page and files as the edge serves them: same-origin only, a strict
Content-Security-Policy that still lets the page reach the blob store's signed URLs, and
`/` pointing at it. tests/pyodide/test_api.py runs these against the Worker too;
tests/browser drives the page itself in Chromium."""

from html.parser import HTMLParser
from urllib.parse import urlsplit

import httpx

from tests.edge_worker.conftest import AUTH

ASSET_TYPES = {
    "/playground/assets/playground.js": "text/javascript",
    "/playground/assets/playground.css": "text/css",
}


class References(HTMLParser):
    """Every URL the page makes the browser load by itself: scripts, styles, icons, media."""

    def __init__(self) -> None:
        super().__init__()
        self.loaded: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "link" and values.get("href"):
            self.loaded.append(str(values["href"]))
        if tag in ("script", "img", "audio", "video", "source", "iframe") and values.get("src"):
            self.loaded.append(str(values["src"]))


def policy(response: httpx.Response) -> dict[str, list[str]]:
    directives = response.headers["content-security-policy"].split(";")
    return {name: values for name, *values in (d.split() for d in directives)}


def test_the_root_points_browsers_at_the_playground(client: httpx.Client) -> None:
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 302
    assert response.headers["location"] == "/playground"


def test_the_page_and_its_files_come_from_this_origin_only(client: httpx.Client) -> None:
    page = client.get("/playground")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["x-frame-options"] == "DENY"
    references = References()
    references.feed(page.text)
    assert sorted(url for url in references.loaded if url != "data:,") == sorted(ASSET_TYPES)
    for path, media_type in ASSET_TYPES.items():
        asset = client.get(path)
        assert asset.status_code == 200, path
        assert asset.headers["content-type"] == f"{media_type}; charset=utf-8"
        assert asset.headers["x-content-type-options"] == "nosniff"
        assert len(asset.content) > 1000


def test_scripts_and_styles_are_this_origins_and_nothing_inline(client: httpx.Client) -> None:
    directives = policy(client.get("/playground"))
    assert directives["default-src"] == ["'none'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert not any("unsafe" in value or value == "*" for v in directives.values() for value in v)


def test_the_policy_lets_the_page_reach_the_blob_store_and_no_other(
    client: httpx.Client,
) -> None:
    """Uploads are PUT to the store's signed URLs and results play from them: exactly the
    origin of the URLs this edge signs is allowed besides its own."""
    grant = client.post(
        "/uploads", json={"audio": {"content_type": "audio/wav", "size_bytes": 100}}, headers=AUTH
    )
    assert grant.status_code == 200, grant.text
    parts = urlsplit(grant.json()["audio"]["url"])
    blob_origin = f"{parts.scheme}://{parts.netloc}"
    directives = policy(client.get("/playground"))
    assert directives["connect-src"] == ["'self'", blob_origin]
    assert directives["media-src"] == ["'self'", "blob:", blob_origin]


def test_an_unknown_file_is_not_found_in_the_error_envelope(client: httpx.Client) -> None:
    for path in ("/playground/assets/index.html", "/playground/assets/nope.js"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "NOT_FOUND"
