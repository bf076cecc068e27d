"""The browser playground: `GET /playground`, its script and style, and `GET /` pointing there.

The files (edge_worker/static/playground/) are read once, when this module is imported: on
the Worker that happens before workerd's memory snapshot, so no request touches the
filesystem, and nothing is ever fetched from a CDN. The page talks to the public API with the
key its user pastes; its Content-Security-Policy allows only this origin and the origin the
blob store signs its URLs for (uploads are PUT there, results play from there).
"""

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from litestar import Request, Response, Router, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect

from edge_worker.http.dependencies import provide_use_cases

ASSETS = Path(__file__).resolve().parents[1] / "static" / "playground"
PAGE_PATH = "/playground"
ASSETS_PATH = f"{PAGE_PATH}/assets"
MEDIA_TYPES = MappingProxyType(
    {
        ".html": "text/html",  # Litestar adds the charset (utf-8) to text types
        ".js": "text/javascript",
        ".css": "text/css",
    }
)
# Served as is to every browser: nothing here is sniffed, framed, or sent on as a referrer
# (the page holds result URLs whose query strings are signatures).
COMMON_HEADERS = MappingProxyType(
    {
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }
)


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str


def load_assets(folder: Path = ASSETS) -> MappingProxyType[str, Asset]:
    return MappingProxyType(
        {
            path.name: Asset(path.read_bytes(), MEDIA_TYPES[path.suffix])
            for path in sorted(folder.iterdir())
            if path.suffix in MEDIA_TYPES
        }
    )


FILES = load_assets()
PAGE = FILES["index.html"]


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(blob_origin: str) -> str:
    """Scripts and styles from this origin only (none inline); fetches and media from here and
    from the blob store: uploads are PUT to its signed URLs and results play from them.
    `blob:` is the page's own previews of the chosen files and of a recording."""
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' blob: data:",
            f"media-src 'self' blob: {blob_origin}",
            f"connect-src 'self' {blob_origin}",
            "form-action 'self'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        )
    )


@get("/", include_in_schema=False, sync_to_thread=False)
def home() -> Redirect:
    return Redirect(PAGE_PATH, status_code=302)


@get(PAGE_PATH, include_in_schema=False, sync_to_thread=False)
def playground_page(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The blob origin is read off a URL the runtime's blob store signs (the local edge's
    `PUBLIC_URL`, R2's S3 endpoint on the Worker), so the policy follows the store."""
    context = provide_use_cases(request.app.state).context
    probe = context.blobs.presign_get("playground", context.clock.now() + timedelta(minutes=1))
    return Response(
        PAGE.body,
        media_type=PAGE.media_type,
        headers={
            **COMMON_HEADERS,
            "Content-Security-Policy": content_security_policy(origin_of(probe)),
            "X-Frame-Options": "DENY",
        },
    )


@get(f"{ASSETS_PATH}/{{name:str}}", include_in_schema=False, sync_to_thread=False)
def playground_asset(name: FromPath[str]) -> Response[bytes]:
    asset = FILES.get(name)
    if asset is None or asset is PAGE:
        raise NotFoundException()
    return Response(asset.body, media_type=asset.media_type, headers=dict(COMMON_HEADERS))


playground_router = Router(path="/", route_handlers=[home, playground_page, playground_asset])
