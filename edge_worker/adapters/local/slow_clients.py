"""Guards of the local edge against slow and silent clients, which uvicorn alone lets hold a
connection (and its file descriptor) open forever: a deadline for a request's headers, and a
read timeout on its body. On Cloudflare the platform does both."""

import asyncio

import h11
from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from contracts import ErrorCode
from edge_worker.domain.problems import Problem


def header_deadline_protocol(seconds: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol, closing a connection whose request headers are not complete
    `seconds` after it opened or after the first byte of its next request.

    uvicorn arms its keep-alive timer only after a response and cancels it on any byte, so a
    client that connects and stays silent, or trickles a header line at a time, is never
    timed out by it."""

    class HeaderDeadlineProtocol(H11Protocol):
        deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport), "uvicorn serves streams"
            super().connection_made(transport)
            self.deadline = self.loop.call_later(seconds, self.headers_too_slow)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:
                self.disarm()
            elif self.deadline is None:
                self.deadline = self.loop.call_later(seconds, self.headers_too_slow)

        def connection_lost(self, exc: Exception | None) -> None:
            self.disarm()
            super().connection_lost(exc)

        def disarm(self) -> None:
            if self.deadline is not None:
                self.deadline.cancel()
                self.deadline = None

        def headers_too_slow(self) -> None:
            self.deadline = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.transport.close()

    return HeaderDeadlineProtocol


def body_read_timeout(app: ASGIApp, seconds: float) -> ASGIApp:
    """Fail a request whose body stalls for more than `seconds` with 408 `REQUEST_TIMEOUT`
    in the envelope, and close its connection.

    Only reads of the body are timed: once it is complete, `receive()` waits for a
    disconnect, which may rightly take as long as a download does."""

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        body_done = False
        stalled = False

        async def timed_receive() -> ReceiveMessage:
            nonlocal body_done, stalled
            if body_done:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), seconds)
            except TimeoutError:
                stalled = True
                raise Problem(
                    ErrorCode.REQUEST_TIMEOUT,
                    f"the request body stalled for more than {seconds:g} s",
                ) from None
            body_done = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        async def closing_send(message: Message) -> None:
            if stalled and message["type"] == "http.response.start":
                headers = [*message.get("headers", []), (b"connection", b"close")]
                message = {**message, "headers": headers}
            await send(message)

        await app(scope, timed_receive, closing_send)

    return guarded
