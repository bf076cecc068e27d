"""Litestar dependency providers: the only place requests meet use cases and auth."""

from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import Provide
from litestar.handlers import BaseRouteHandler
from litestar.types import ASGIApp, Receive, Scope, Send

from contracts import ErrorCode
from edge_worker.auth import authenticate_token
from edge_worker.domain.problems import Problem
from edge_worker.domain.quotas import Caller
from edge_worker.usecases.agent_protocol import AgentProtocol
from edge_worker.usecases.api_keys import ApiKeys
from edge_worker.usecases.usage import Usage
from edge_worker.usecases.wiring import UseCases


def provide_use_cases(state: State) -> UseCases:
    return state.use_cases


def provide_agent_protocol(state: State) -> AgentProtocol:
    return provide_use_cases(state).agent_protocol


def client_auth(app: ASGIApp) -> ASGIApp:
    """Route middleware of the client routes: checks the API key (API_KEYS, else one indexed
    read of the key store) and keeps the caller's owner id in the scope, before Litestar
    reads the parameters or the body.

    Not a dependency nor a guard: Litestar's dependency resolution was a sixth of a status
    read's CPU, and a guard copies the route handler on every call."""

    async def authenticated(scope: Scope, receive: Receive, send: Send) -> None:
        keys = provide_use_cases(scope["litestar_app"].state).api_keys
        authorization = next(
            (
                value.decode("latin-1")
                for name, value in scope["headers"]
                if name == b"authorization"
            ),
            "",
        )
        scope["state"]["caller"] = await keys.authenticate({"authorization": authorization})
        await app(scope, receive, send)

    return authenticated


def scope_caller(scope: Scope) -> Caller:
    """The caller `client_auth` established for this request."""
    caller: Caller = scope["state"]["caller"]
    return caller


def client_owner(request: Request[Any, Any, Any]) -> str:
    return scope_caller(request.scope).owner


def client_caller(request: Request[Any, Any, Any]) -> Caller:
    return scope_caller(request.scope)


def client_use_cases(request: Request[Any, Any, Any]) -> UseCases:
    return provide_use_cases(request.app.state)


DEPENDENCIES = {"agent_protocol": Provide(provide_agent_protocol, sync_to_thread=False)}
CLIENT_MIDDLEWARE = [client_auth]


def agent_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Agents authenticate with AGENT_TOKEN; client API keys are refused here."""
    settings = provide_use_cases(connection.app.state).context.settings
    authenticate_token(connection.headers, settings.agent_token, "agent token")


def admin_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """The admin API takes ADMIN_TOKEN (constant time); without one set it does not exist."""
    settings = provide_use_cases(connection.app.state).context.settings
    if settings.admin_token is None:
        raise Problem(ErrorCode.NOT_FOUND, "no such route")
    authenticate_token(connection.headers, settings.admin_token, "admin token")


def admin_keys(request: Request[Any, Any, Any]) -> ApiKeys:
    return provide_use_cases(request.app.state).api_keys


def admin_usage(request: Request[Any, Any, Any]) -> Usage:
    return provide_use_cases(request.app.state).usage
