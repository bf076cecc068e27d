"""Litestar dependency providers: the only place requests meet use cases and auth."""

from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.handlers import BaseRouteHandler

from edge_worker.auth import authenticate_client, authenticate_token
from edge_worker.ports import JobStore
from edge_worker.usecases.agent_protocol import AgentProtocol
from edge_worker.usecases.wiring import UseCases


def provide_use_cases(state: State) -> UseCases:
    return state.use_cases


def provide_agent_protocol(state: State) -> AgentProtocol:
    return provide_use_cases(state).agent_protocol


def provide_job_store(state: State) -> JobStore:
    return provide_use_cases(state).context.store


def provide_owner(request: Request[Any, Any, Any], use_cases: NamedDependency[UseCases]) -> str:
    """The caller, checked against the API keys of `use_cases`' settings.

    Depending on `use_cases` chains the two dependencies of a client route, so Litestar
    resolves them one after the other rather than in an anyio task group per request.
    """
    return authenticate_client(request.headers, use_cases.context.settings.api_keys)


DEPENDENCIES = {
    name: Provide(provider, sync_to_thread=False)
    for name, provider in {
        "use_cases": provide_use_cases,
        "agent_protocol": provide_agent_protocol,
        "job_store": provide_job_store,
    }.items()
}
CLIENT_DEPENDENCIES = {"owner": Provide(provide_owner, sync_to_thread=False)}


def agent_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Agents authenticate with AGENT_TOKEN; client API keys are refused here."""
    settings = provide_use_cases(connection.app.state).context.settings
    authenticate_token(connection.headers, settings.agent_token, "agent token")
