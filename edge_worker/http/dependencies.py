"""Litestar dependency providers: the only place requests meet use cases and auth."""

from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import Provide
from litestar.handlers import BaseRouteHandler

from edge_worker.auth import authenticate_client, authenticate_token
from edge_worker.ports import JobStore
from edge_worker.settings import EdgeSettings
from edge_worker.usecases.agent_protocol import AgentProtocol
from edge_worker.usecases.creation import JobCreation
from edge_worker.usecases.transitions import JobTransitions
from edge_worker.usecases.uploads import Uploads
from edge_worker.usecases.views import JobViews
from edge_worker.usecases.wiring import UseCases


def _use_cases(state: State) -> UseCases:
    return state.use_cases


def provide_views(state: State) -> JobViews:
    return _use_cases(state).views


def provide_uploads(state: State) -> Uploads:
    return _use_cases(state).uploads


def provide_creation(state: State) -> JobCreation:
    return _use_cases(state).creation


def provide_transitions(state: State) -> JobTransitions:
    return _use_cases(state).transitions


def provide_agent_protocol(state: State) -> AgentProtocol:
    return _use_cases(state).agent_protocol


def provide_settings(state: State) -> EdgeSettings:
    return _use_cases(state).context.settings


def provide_job_store(state: State) -> JobStore:
    return _use_cases(state).context.store


DEPENDENCIES = {
    name: Provide(provider, sync_to_thread=False)
    for name, provider in {
        "views": provide_views,
        "uploads": provide_uploads,
        "creation": provide_creation,
        "transitions": provide_transitions,
        "agent_protocol": provide_agent_protocol,
        "settings": provide_settings,
        "job_store": provide_job_store,
    }.items()
}


def provide_owner(request: Request[Any, Any, Any], state: State) -> str:
    return authenticate_client(request.headers, provide_settings(state).api_keys)


def agent_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Agents authenticate with AGENT_TOKEN; client API keys are refused here."""
    settings = provide_settings(connection.app.state)
    authenticate_token(connection.headers, settings.agent_token, "agent token")
