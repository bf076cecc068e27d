"""`RetryPolicy`: the delays, what is retried, and the defaults every client uses."""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest

from gpu_agent.retry import (
    API_RETRY,
    HEARTBEAT_RETRY,
    TRANSFER_RETRY,
    CallError,
    RetryPolicy,
    is_transient_status,
    is_transient_transport,
)

REQUEST = httpx.Request("GET", "http://edge.test/")


class Flaky:
    """Raises the scripted errors in order, then returns "ok"."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def _policy(sleeps: list[float], **kw: float) -> RetryPolicy:
    return RetryPolicy(sleep=sleeps.append, rand=lambda: 0.0, **kw)  # type: ignore[arg-type]


def transient(message: str = "down") -> CallError:
    return CallError(message, transient=True)


def test_delays_double_up_to_the_ceiling() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=10.0, jitter=0.0)
    assert [policy.delay(n) for n in range(1, 8)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
    assert policy.delay(0) == 1.0
    assert policy.delay(100_000) == 10.0  # no overflow after a very long outage


@pytest.mark.parametrize(("rand", "expected"), [(0.0, 8.0), (0.5, 6.0), (1.0, 4.0)])
def test_jitter_only_shortens_a_delay(rand: float, expected: float) -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=10.0, jitter=0.5, rand=lambda: rand)
    assert policy.delay(4) == expected


def test_transient_errors_are_retried_until_success() -> None:
    sleeps: list[float] = []
    fn = Flaky(transient(), transient(), transient())
    assert _policy(sleeps, attempts=6).call(fn, what="edge claim") == "ok"
    assert fn.calls == 4
    assert sleeps == [1.0, 2.0, 4.0]


def test_final_errors_are_raised_at_once() -> None:
    sleeps: list[float] = []
    final = CallError("conflict", status_code=409)
    fn = Flaky(final)
    with pytest.raises(CallError) as caught:
        _policy(sleeps).call(fn, what="edge complete")
    assert caught.value is final
    assert fn.calls == 1 and sleeps == []


def test_the_last_error_is_raised_when_attempts_run_out() -> None:
    sleeps: list[float] = []
    errors = [transient(f"down {n}") for n in range(4)]
    fn = Flaky(*errors)
    with pytest.raises(CallError) as caught:
        _policy(sleeps, attempts=3).call(fn, what="queue ack")
    assert caught.value is errors[2]
    assert fn.calls == 3 and sleeps == [1.0, 2.0]


def test_other_exceptions_are_not_retried() -> None:
    sleeps: list[float] = []
    fn = Flaky(ValueError("bug"))
    with pytest.raises(ValueError):
        _policy(sleeps).call(fn, what="x")
    assert fn.calls == 1 and sleeps == []


def test_each_retry_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    _policy([]).call(Flaky(transient("refused")), what="upload video")
    (record,) = caplog.records
    assert record.getMessage() == "upload video failed, retrying"
    assert (record.error, record.retry_in_seconds) == ("refused", 1.0)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"attempts": 0},
        {"base_delay": -1.0},
        {"base_delay": 5.0, "max_delay": 1.0},
        {"jitter": 1.5},
        {"jitter": -0.1},
    ],
)
def test_nonsense_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (429, True),
        (500, True),
        (502, True),
        (503, True),
        (504, True),
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (409, False),
        (413, False),
        (422, False),
        (501, False),
    ],
)
def test_transient_statuses(status: int, expected: bool) -> None:
    assert is_transient_status(status) is expected


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (httpx.ConnectError("refused", request=REQUEST), True),
        (httpx.ConnectTimeout("slow", request=REQUEST), True),
        (httpx.ReadTimeout("slow", request=REQUEST), True),
        (httpx.ReadError("reset", request=REQUEST), True),
        (httpx.WriteError("broken pipe", request=REQUEST), True),
        (httpx.RemoteProtocolError("peer closed", request=REQUEST), True),
        (httpx.ProxyError("proxy down", request=REQUEST), True),
        (httpx.UnsupportedProtocol("ftp", request=REQUEST), False),
        (httpx.LocalProtocolError("bad header", request=REQUEST), False),
        (httpx.TooManyRedirects("loop", request=REQUEST), False),
        (httpx.DecodingError("bad gzip", request=REQUEST), False),
    ],
)
def test_transient_transport_errors(error: httpx.HTTPError, expected: bool) -> None:
    assert is_transient_transport(error) is expected


def _worst_total_wait(policy: RetryPolicy, *, rand: float) -> float:
    fixed = replace(policy, rand=lambda: rand)
    return sum(fixed.delay(n) for n in range(1, policy.attempts))


def test_default_policies() -> None:
    # Edge and queue: 6 tries, 12.5-25 s of waiting in all: an edge restart is ridden out.
    assert API_RETRY.attempts == 6
    assert _worst_total_wait(API_RETRY, rand=0.0) == 25.0
    assert _worst_total_wait(API_RETRY, rand=1.0) == 12.5
    # Transfers: 4 tries, no wait over 4 s, so a cancel between tries lands within 5 s.
    assert TRANSFER_RETRY.attempts == 4
    assert TRANSFER_RETRY.delay(99) <= 4.0
    assert _worst_total_wait(TRANSFER_RETRY, rand=0.0) == 7.0
    # Heartbeats retry at least every 5 s, well inside the edge's 120 s timeout.
    assert HEARTBEAT_RETRY.delay(99) <= 5.0
