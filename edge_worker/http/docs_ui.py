"""The docs UI (Swagger UI) with its assets served by the edge itself, so it works offline:
they come from the `swagger-ui-py` package, which ships a Swagger UI 5 build."""

import importlib.util
from pathlib import Path
from typing import Any

from litestar import Router
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.static_files import create_static_files_router

ASSETS_PATH = "/swagger-assets"


def swagger_assets() -> Path | None:
    """Where the installed `swagger-ui-py` keeps Swagger UI's files, found without importing
    the package (which would import its template engine); None when it is not installed."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "static"


class LocalSwaggerPlugin(SwaggerRenderPlugin):
    """Swagger UI at `<schema path>/swagger`, its scripts, styles and icon served next to it."""

    def __init__(self, assets: Path, schema_path: str, **kwargs: Any) -> None:
        base = f"{schema_path.rstrip('/')}{ASSETS_PATH}"
        super().__init__(
            js_url=f"{base}/swagger-ui-bundle.js",
            css_url=f"{base}/swagger-ui.css",
            standalone_preset_js_url=f"{base}/swagger-ui-standalone-preset.js",
            favicon=f"<link rel='icon' type='image/png' href='{base}/favicon-32x32.png'>",
            **kwargs,
        )
        self.assets = assets

    def receive_router(self, router: Router) -> None:
        super().receive_router(router)
        router.register(
            create_static_files_router(
                ASSETS_PATH, directories=[self.assets], include_in_schema=False
            )
        )
