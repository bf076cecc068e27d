"""Litestar dependency providers: the only place requests meet services and auth."""

from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.handlers import BaseRouteHandler

from edge_worker.agent_service import AgentService
from edge_worker.auth import authenticate_client, authenticate_token
from edge_worker.services import JobService, Services


def provide_services(state: State) -> Services:
    return state.services


def provide_job_service(state: State) -> JobService:
    return state.job_service


def provide_agent_service(state: State) -> AgentService:
    return state.agent_service


def provide_owner(request: Request[Any, Any, Any], state: State) -> str:
    services: Services = state.services
    return authenticate_client(request.headers, services.settings.api_keys)


def agent_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Agents authenticate with AGENT_TOKEN; client API keys are refused here."""
    services: Services = connection.app.state.services
    authenticate_token(connection.headers, services.settings.agent_token, "agent token")
