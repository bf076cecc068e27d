"""The rate limit of `POST /generate` and `POST /uploads`, and its headers
(draft-ietf-httpapi-ratelimit-headers): `RateLimit-Policy: 60;w=60` and
`RateLimit: limit=60, remaining=59, reset=1` on every answer of those routes."""

from litestar.datastructures import MutableScopeHeaders
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from edge_worker.domain.quotas import WINDOW_SECONDS, RateState
from edge_worker.http.dependencies import CLIENT_MIDDLEWARE, provide_use_cases, scope_caller


def rate_headers(state: RateState) -> dict[str, str]:
    headers = {
        "RateLimit-Policy": f"{state.limit};w={WINDOW_SECONDS}",
        "RateLimit": (
            f"limit={state.limit}, remaining={state.remaining}, reset={state.reset_seconds}"
        ),
    }
    if state.retry_after is not None:
        headers["Retry-After"] = str(state.retry_after)
    return headers


def rate_limit(app: ASGIApp) -> ASGIApp:
    """Route middleware, after `client_auth`: takes the caller's token before the body is
    read, so a refused request costs one read of its bucket and no upload."""

    async def limited(scope: Scope, receive: Receive, send: Send) -> None:
        quotas = provide_use_cases(scope["litestar_app"].state).quotas
        headers = rate_headers(await quotas.take_request(scope_caller(scope)))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableScopeHeaders.from_message(message)
                for name, value in headers.items():
                    response_headers[name] = value
            await send(message)

        await app(scope, receive, send_with_headers)

    return limited


LIMITED_CLIENT_MIDDLEWARE = [*CLIENT_MIDDLEWARE, rate_limit]
