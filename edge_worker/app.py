"""`create_app(use_cases)`: the one Litestar app both runtimes serve."""

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager

from litestar import Litestar
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.types import ControllerRouterHandler

from edge_worker import __version__
from edge_worker.http.dependencies import DEPENDENCIES
from edge_worker.http.errors import exception_handlers
from edge_worker.http.json_response import ModelResponse
from edge_worker.http.observability import mark_request, stamp_response
from edge_worker.routes.agent import agent_router
from edge_worker.routes.generate import generate
from edge_worker.routes.health import health
from edge_worker.routes.jobs import jobs_router
from edge_worker.routes.uploads import create_uploads
from edge_worker.usecases.wiring import UseCases

JSON_BODY_LIMIT = 1024 * 1024


def create_app(
    use_cases: UseCases | None,
    extra_routes: Sequence[ControllerRouterHandler] = (),
    lifespan: Sequence[Callable[[Litestar], AbstractAsyncContextManager[None]]] = (),
    debug: bool = False,
) -> Litestar:
    """Build the app; runtimes add their own routes (local blobs, queue) and lifespans.

    The Worker builds it before it has bindings (`use_cases=None`, at import time) and
    attaches its use cases on its first event with `attach_use_cases`.
    """
    app = Litestar(
        lifespan=list(lifespan),
        route_handlers=[generate, create_uploads, jobs_router, health, agent_router, *extra_routes],
        dependencies=DEPENDENCIES,
        exception_handlers=exception_handlers,
        response_class=ModelResponse,
        before_request=mark_request,
        before_send=[stamp_response],
        request_max_body_size=JSON_BODY_LIMIT,
        logging_config=None,
        debug=debug,
        openapi_config=OpenAPIConfig(
            title="Infinite Avatar API",
            version=__version__,
            path="/schema",
            render_plugins=[SwaggerRenderPlugin()],
            components=Components(
                security_schemes={
                    "bearer": SecurityScheme(type="http", scheme="bearer", description="API key")
                }
            ),
            security=[{"bearer": []}],
        ),
    )
    if use_cases is not None:
        attach_use_cases(app, use_cases)
    return app


def attach_use_cases(app: Litestar, use_cases: UseCases) -> None:
    """Serve `app`'s requests with `use_cases` (replacing any attached before)."""
    app.state.use_cases = use_cases
