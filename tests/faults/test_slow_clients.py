"""Slow, silent and too many clients against a live `avatar-edge serve`, over raw sockets:
each is cut off within its timeout, and the edge's open file descriptors return to where
they were (issue 12: 35 such connections were still open after 120 s)."""

import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn

from edge_worker.local import build_local, local_settings, server_config
from tests.e2e.conftest import API_KEY, Stack, free_port
from tests.edge_worker.conftest import API_KEY as EDGE_KEY
from tests.edge_worker.conftest import ENV

TIMEOUTS = {
    "HTTP_HEADER_TIMEOUT_SECONDS": "1",
    "HTTP_BODY_TIMEOUT_SECONDS": "1",
    "HTTP_KEEP_ALIVE_SECONDS": "1",
}
# Each guard fires after 1 s; the margin covers a loaded machine, far below "never".
CUT_OFF_WITHIN_S = 5.0


def open_fds(stack: Stack) -> int:
    assert stack.edge is not None
    return len(os.listdir(f"/proc/{stack.edge.pid}/fd"))


def steady_fds(stack: Stack) -> int:
    """The count once the connections of earlier requests have closed."""
    previous, now = -1, open_fds(stack)
    while now != previous:
        time.sleep(0.3)
        previous, now = now, open_fds(stack)
    return now


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=CUT_OFF_WITHIN_S * 2)


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the edge sends until it closes the connection (a timeout fails the test);
    a reset is a close too, as when it closes on a client still writing."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


def stalled_body(path: str, content_type: str, first_bytes: bytes) -> bytes:
    """A request announcing 100 kB of body and sending only its first bytes."""
    return (
        f"POST {path} HTTP/1.1\r\nHost: edge\r\nAuthorization: Bearer {API_KEY}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: 100000\r\n\r\n"
    ).encode() + first_bytes


BOUNDARY = "slowbody"
STALLED_BODIES = {
    "multipart /generate": stalled_body(
        "/generate",
        f"multipart/form-data; boundary={BOUNDARY}",
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nhi'.encode(),
    ),
    "JSON /uploads": stalled_body("/uploads", "application/json", b'{"image": {'),
}


def trickle_headers(sock: socket.socket, stop: threading.Event) -> None:
    """A header line every 0.2 s, for ever: each byte is progress, none completes the request."""
    with_errors = (BrokenPipeError, ConnectionResetError, OSError)
    try:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: edge\r\n")
        while not stop.wait(0.2):
            sock.sendall(b"X-Slow: 1\r\n")
    except with_errors:
        return


@contextmanager
def trickling(port: int, count: int) -> Iterator[list[socket.socket]]:
    stop = threading.Event()
    socks = [connect(port) for _ in range(count)]
    threads = [threading.Thread(target=trickle_headers, args=(s, stop)) for s in socks]
    for thread in threads:
        thread.start()
    try:
        yield socks
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        for sock in socks:
            sock.close()


def eventually(holds: Callable[[], bool], within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while not (answer := holds()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return answer


@pytest.fixture
def edge(stack_factory: Callable[..., Stack]) -> Stack:
    stack = stack_factory(**TIMEOUTS)
    with stack.client() as client:  # warm every route used below
        assert client.get("/health").status_code == 200
        assert client.post("/uploads", json={}).status_code == 400
        assert client.post("/generate", files={"prompt": (None, "hi")}).status_code == 400
    return stack


def test_silent_slow_header_and_stalled_body_clients_are_cut_off(edge: Stack) -> None:
    baseline = steady_fds(edge)
    started = time.monotonic()
    silent = [connect(edge.port) for _ in range(5)]
    stalled = {}
    for name, request in STALLED_BODIES.items():
        for index in range(10):
            sock = connect(edge.port)
            sock.sendall(request)
            stalled[f"{name} #{index}"] = sock
    with trickling(edge.port, 10) as slow_headers:
        held = eventually(lambda: open_fds(edge) >= baseline + 35, 3.0)
        assert held, "the edge holds every connection at first"

        for sock in [*silent, *slow_headers]:
            assert read_until_closed(sock) == b"", "closed without a response"
        for name, sock in stalled.items():
            head, _, body = read_until_closed(sock).partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 408 "), (name, head)
            assert b"connection: close" in head.lower(), name
            assert json.loads(body)["error"]["code"] == "REQUEST_TIMEOUT", name
        elapsed = time.monotonic() - started
    assert elapsed < CUT_OFF_WITHIN_S, f"took {elapsed:.1f} s"

    for sock in [*silent, *stalled.values()]:
        sock.close()
    assert eventually(lambda: open_fds(edge) <= baseline, CUT_OFF_WITHIN_S), open_fds(edge)
    with edge.client() as client:
        assert client.get("/health").status_code == 200, "and it still serves"


def test_an_idle_keep_alive_connection_is_closed(edge: Stack) -> None:
    sock = connect(edge.port)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: edge\r\n\r\n")
    started = time.monotonic()
    assert read_until_closed(sock).startswith(b"HTTP/1.1 200 ")
    assert time.monotonic() - started < CUT_OFF_WITHIN_S
    sock.close()


def test_headers_over_the_limit_are_400_and_the_connection_closed(
    stack_factory: Callable[..., Stack],
) -> None:
    stack = stack_factory(HTTP_MAX_HEADER_BYTES="4096")
    sock = connect(stack.port)
    # h11 measures headers still incomplete: what one read completes is parsed whole.
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: edge\r\nX-Big: " + b"a" * 8192)
    assert read_until_closed(sock).startswith(b"HTTP/1.1 400 ")
    sock.close()


def test_requests_over_the_connection_cap_get_503_until_others_leave(
    stack_factory: Callable[..., Stack],
) -> None:
    stack = stack_factory(HTTP_MAX_CONNECTIONS="4", HTTP_HEADER_TIMEOUT_SECONDS="30")
    holders = [connect(stack.port) for _ in range(4)]
    time.sleep(0.2)
    with stack.client() as client:
        assert client.get("/health").status_code == 503
        for sock in holders:
            sock.close()
        time.sleep(0.2)
        assert client.get("/health").status_code == 200


# --- the same server in this process, so coverage sees the guards run -------------------


@pytest.fixture
def in_process(tmp_path: Path) -> Iterator[int]:
    """`server_config` served by uvicorn on a thread of this process; yields its port."""
    port = free_port()
    settings = local_settings({**ENV, **TIMEOUTS}, "127.0.0.1", port)
    runtime = build_local(settings, tmp_path / "data")
    server = uvicorn.Server(server_config(runtime.app, settings, "127.0.0.1", port))
    thread = threading.Thread(target=server.run)
    thread.start()
    assert eventually(lambda: server.started, 10.0), "uvicorn did not start"
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join()
        runtime.close()


def test_the_guards_in_process(in_process: int) -> None:
    silent = connect(in_process)
    stalled = connect(in_process)
    stalled.sendall(STALLED_BODIES["JSON /uploads"].replace(API_KEY.encode(), EDGE_KEY.encode()))
    with trickling(in_process, 1) as [slow]:
        assert read_until_closed(silent) == read_until_closed(slow) == b""
        assert b" 408 " in read_until_closed(stalled).partition(b"\r\n")[0]
    for sock in (silent, stalled):
        sock.close()
    complete = connect(in_process)
    complete.sendall(
        f"POST /uploads HTTP/1.1\r\nHost: edge\r\nAuthorization: Bearer {EDGE_KEY}\r\n"
        "Content-Type: application/json\r\nContent-Length: 2\r\n"
        "Connection: close\r\n\r\n{}".encode()
    )
    assert read_until_closed(complete).startswith(b"HTTP/1.1 400 "), "a whole body is read"
    complete.close()
