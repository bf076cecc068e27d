"""Litestar dependency providers: the only place requests meet use cases and auth."""

from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import Provide
from litestar.handlers import BaseRouteHandler
from litestar.types import ASGIApp, Receive, Scope, Send

from edge_worker.auth import authenticate_client, authenticate_token
from edge_worker.usecases.agent_protocol import AgentProtocol
from edge_worker.usecases.wiring import UseCases


def provide_use_cases(state: State) -> UseCases:
    return state.use_cases


def provide_agent_protocol(state: State) -> AgentProtocol:
    return provide_use_cases(state).agent_protocol


def client_auth(app: ASGIApp) -> ASGIApp:
    """Route middleware of the client routes: checks the API key and keeps the caller's owner
    id in the scope, before Litestar reads the parameters or the body.

    Not a dependency nor a guard: Litestar's dependency resolution was a sixth of a status
    read's CPU, and a guard copies the route handler on every call."""

    async def authenticated(scope: Scope, receive: Receive, send: Send) -> None:
        settings = provide_use_cases(scope["litestar_app"].state).context.settings
        authorization = next(
            (
                value.decode("latin-1")
                for name, value in scope["headers"]
                if name == b"authorization"
            ),
            "",
        )
        owner = authenticate_client(
            {"authorization": authorization}, settings.api_keys, settings.api_key_pepper
        )
        scope["state"]["owner"] = owner
        await app(scope, receive, send)

    return authenticated


def client_owner(request: Request[Any, Any, Any]) -> str:
    """The owner id `client_auth` established for this request."""
    owner: str = request.scope["state"]["owner"]
    return owner


def client_use_cases(request: Request[Any, Any, Any]) -> UseCases:
    return provide_use_cases(request.app.state)


DEPENDENCIES = {"agent_protocol": Provide(provide_agent_protocol, sync_to_thread=False)}
CLIENT_MIDDLEWARE = [client_auth]


def agent_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Agents authenticate with AGENT_TOKEN; client API keys are refused here."""
    settings = provide_use_cases(connection.app.state).context.settings
    authenticate_token(connection.headers, settings.agent_token, "agent token")
