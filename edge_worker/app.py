"""`create_app(use_cases)`: the one Litestar app both runtimes serve."""

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from functools import cache
from pathlib import Path
from typing import Any

from litestar import Litestar, Router, get
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import OpenAPIRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components
from litestar.types import ControllerRouterHandler

from edge_worker import __version__
from edge_worker.http.dependencies import DEPENDENCIES
from edge_worker.http.docs_ui import LocalSwaggerPlugin
from edge_worker.http.errors import exception_handlers
from edge_worker.http.json_body import DepthCheckedRequest
from edge_worker.http.json_response import ModelResponse
from edge_worker.http.observability import mark_request, stamp_response
from edge_worker.http.openapi import AGENT_SECURITY_SCHEMES, SECURITY_SCHEMES
from edge_worker.routes.admin import admin_router
from edge_worker.routes.agent import agent_router
from edge_worker.routes.generate import generate
from edge_worker.routes.health import health
from edge_worker.routes.job_events import job_events_router
from edge_worker.routes.jobs import jobs_router
from edge_worker.routes.playground import playground_router
from edge_worker.routes.pool import pool_status
from edge_worker.routes.uploads import create_uploads
from edge_worker.routes.usage import usage_router
from edge_worker.routes.webhooks import webhooks_router
from edge_worker.usecases.wiring import UseCases

JSON_BODY_LIMIT = 1024 * 1024
SCHEMA_PATH = "/schema"
TITLE = "Infinite Avatar API"


@cache
def agent_document() -> dict[str, Any]:
    """The agent protocol's own OpenAPI document, built once from the same handlers."""
    app = Litestar(
        route_handlers=[Router(path="/", route_handlers=[agent_router], include_in_schema=True)],
        dependencies=DEPENDENCIES,
        openapi_config=OpenAPIConfig(
            title=f"{TITLE}: agent protocol",
            version=__version__,
            description="For GPU agents only (docs/API.md#agent-protocol).",
            components=Components(security_schemes=AGENT_SECURITY_SCHEMES),
        ),
    )
    return app.openapi_schema.to_schema()


@get(f"{SCHEMA_PATH}/agent/openapi.json", include_in_schema=False, sync_to_thread=False)
def agent_openapi() -> dict[str, Any]:
    return agent_document()


def _docs_ui(docs_assets: Path | None) -> OpenAPIRenderPlugin:
    """Swagger UI from local files when the runtime has them, else from the CDN."""
    if docs_assets is None:
        return SwaggerRenderPlugin()
    return LocalSwaggerPlugin(docs_assets, SCHEMA_PATH)


def create_app(
    use_cases: UseCases | None,
    extra_routes: Sequence[ControllerRouterHandler] = (),
    lifespan: Sequence[Callable[[Litestar], AbstractAsyncContextManager[None]]] = (),
    debug: bool = False,
    docs_assets: Path | None = None,
) -> Litestar:
    """Build the app; runtimes add their own routes (local blobs, queue) and lifespans.

    The Worker builds it before it has bindings (`use_cases=None`, at import time) and
    attaches its use cases on its first event with `attach_use_cases`. `docs_assets`: a
    folder of Swagger UI's files (`docs_ui.swagger_assets()`), else the docs UI uses a CDN.
    """
    app = Litestar(
        lifespan=list(lifespan),
        route_handlers=[
            generate,
            create_uploads,
            jobs_router,
            job_events_router,
            usage_router,
            webhooks_router,
            health,
            Router(path="/", route_handlers=[agent_router], include_in_schema=False),
            admin_router,
            agent_openapi,
            playground_router,
            pool_status,
            *extra_routes,
        ],
        dependencies=DEPENDENCIES,
        exception_handlers=exception_handlers,
        response_class=ModelResponse,
        before_request=mark_request,
        before_send=[stamp_response],
        request_max_body_size=JSON_BODY_LIMIT,
        request_class=DepthCheckedRequest,
        logging_config=None,
        debug=debug,
        openapi_config=OpenAPIConfig(
            title=TITLE,
            version=__version__,
            path=SCHEMA_PATH,
            render_plugins=[_docs_ui(docs_assets)],
            components=Components(security_schemes=SECURITY_SCHEMES),
        ),
    )
    if use_cases is not None:
        attach_use_cases(app, use_cases)
    return app


def attach_use_cases(app: Litestar, use_cases: UseCases) -> None:
    """Serve `app`'s requests with `use_cases` (replacing any attached before)."""
    app.state.use_cases = use_cases
