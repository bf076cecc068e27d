"""`create_app(services)`: the one Litestar app both runtimes serve."""

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager

from litestar import Litestar
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.types import ControllerRouterHandler

from edge_worker import __version__
from edge_worker.agent_service import AgentService
from edge_worker.dependencies import (
    provide_agent_service,
    provide_job_service,
    provide_services,
)
from edge_worker.errors import exception_handlers
from edge_worker.observability import mark_request, stamp_response
from edge_worker.routes.agent import agent_router
from edge_worker.routes.generate import generate
from edge_worker.routes.health import health
from edge_worker.routes.jobs import jobs_router
from edge_worker.routes.uploads import create_uploads
from edge_worker.services import JobService, Services

JSON_BODY_LIMIT = 1024 * 1024


def create_app(
    services: Services | None,
    extra_routes: Sequence[ControllerRouterHandler] = (),
    lifespan: Sequence[Callable[[Litestar], AbstractAsyncContextManager[None]]] = (),
    debug: bool = False,
) -> Litestar:
    """Build the app; runtimes add their own routes (local blobs, queue) and lifespans.

    The Worker builds it before it has bindings (`services=None`, at import time) and
    attaches its services on its first event with `attach_services`.
    """
    app = Litestar(
        lifespan=list(lifespan),
        route_handlers=[generate, create_uploads, jobs_router, health, agent_router, *extra_routes],
        dependencies={
            "services": Provide(provide_services, sync_to_thread=False),
            "job_service": Provide(provide_job_service, sync_to_thread=False),
            "agent_service": Provide(provide_agent_service, sync_to_thread=False),
        },
        exception_handlers=exception_handlers,
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
    if services is not None:
        attach_services(app, services)
    return app


def attach_services(app: Litestar, services: Services) -> None:
    """Serve `app`'s requests with `services` (replacing any attached before)."""
    app.state.services = services
    app.state.job_service = JobService(services)
    app.state.agent_service = AgentService(app.state.job_service)
