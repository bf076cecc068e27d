"""The pull loop: backoff while idle or failing, one message at a time, shutdown grace."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest

from contracts import Stage
from gpu_agent.agent import (
    IDLE_BACKOFF,
    PULL_ERROR_BACKOFF,
    Agent,
    IdleHeartbeat,
    idle_backoff,
    shutdown_grace,
)
from gpu_agent.delivery import MessageDelivery
from gpu_agent.edge_client import EdgeClient
from gpu_agent.outcome import Outcome
from gpu_agent.queue_client import CloudflareQueueClient
from gpu_agent.retry import RetryPolicy
from infinitetalk.engine import CancelledError

from .conftest import SHUTDOWN_FAIL, FakeCloud, FakeEngine, pulled

IDLE = RetryPolicy(base_delay=0.25, max_delay=3.0, jitter=0.0)
ERRORS = RetryPolicy(base_delay=1.0, max_delay=30.0, jitter=0.0)


class StopAfter:
    """A sleep double: records delays and sets `stop` after `n` of them."""

    def __init__(self, stop: threading.Event, n: int) -> None:
        self.stop = stop
        self.n = n
        self.delays: list[float] = []

    def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        if len(self.delays) >= self.n:
            self.stop.set()


def _agent(queue: CloudflareQueueClient, delivery: MessageDelivery, **kw: Any) -> Agent:
    kw.setdefault("idle_backoff", IDLE)
    kw.setdefault("error_backoff", ERRORS)
    return Agent(queue, delivery, **kw)


def test_default_backoffs() -> None:
    assert IDLE_BACKOFF.delay(1) <= 0.25 and IDLE_BACKOFF.delay(50) <= 3.0
    short = idle_backoff(0.1)
    assert 0.075 <= short.delay(1) <= 0.1 and 0.075 <= short.delay(50) <= 0.1
    assert 0.75 * 5.0 <= idle_backoff(5.0).delay(50) <= 5.0
    assert 0.75 * 30.0 <= PULL_ERROR_BACKOFF.delay(50) <= 30.0


def test_empty_queue_backs_off(
    cloud: FakeCloud, queue: CloudflareQueueClient, make_delivery: Any
) -> None:
    stop = threading.Event()
    sleep = StopAfter(stop, 6)
    _agent(queue, make_delivery(), sleep=sleep).run_forever(stop)
    assert sleep.delays == [0.25, 0.5, 1.0, 2.0, 3.0, 3.0]
    assert cloud.kinds() == ["pull"] * 6


def test_work_resets_the_backoff_and_runs_one_at_a_time(
    cloud: FakeCloud, queue: CloudflareQueueClient, make_delivery: Any
) -> None:
    stop = threading.Event()
    sleep = StopAfter(stop, 3)
    agent = _agent(queue, make_delivery(), sleep=sleep)
    cloud.messages.append(pulled(lease_id="a"))
    assert agent.run_once() is Outcome.COMPLETED
    assert agent.run_once() is None
    cloud.messages.extend([pulled(lease_id="b"), pulled(lease_id="c")])
    agent.run_forever(stop)
    assert sleep.delays == [0.25, 0.5, 1.0]  # reset after each job, then idle again
    kinds = cloud.kinds()
    assert kinds.count("complete") == 3
    # A job finishes (complete) before the next pull.
    assert kinds.index("complete") < kinds.index("pull", kinds.index("claim"))
    assert cloud.bodies("pull")[0] == {"batch_size": 1, "visibility_timeout_ms": 60_000}


def test_extra_messages_are_released_at_once(
    cloud: FakeCloud, queue: CloudflareQueueClient, make_delivery: Any, sleeps: list[float]
) -> None:
    batch = [pulled(lease_id="a"), pulled(lease_id="b")]
    body = {"success": True, "result": {"messages": [m.model_dump() for m in batch]}}
    cloud.replies["pull"] = lambda r, b: httpx.Response(200, json=body)
    cloud.script("ack", 500)
    agent = Agent(queue, make_delivery())
    assert agent.run_once() is Outcome.COMPLETED
    assert (
        cloud.bodies("ack")[:2]
        == [{"acks": [], "retries": [{"lease_id": "b", "delay_seconds": 0}]}] * 2
    )
    assert sleeps[0] == 1.0  # the release was retried after the 500


def test_a_release_that_never_gets_through_is_only_logged(
    cloud: FakeCloud, queue: CloudflareQueueClient, make_delivery: Any
) -> None:
    batch = [pulled(lease_id="a"), pulled(lease_id="b")]
    body = {"success": True, "result": {"messages": [m.model_dump() for m in batch]}}
    cloud.replies["pull"] = lambda r, b: httpx.Response(200, json=body)
    cloud.script("ack", *[503] * 6)
    assert Agent(queue, make_delivery()).run_once() is Outcome.COMPLETED


def test_pull_errors_back_off_longer_and_never_kill_the_agent(
    cloud: FakeCloud, queue: CloudflareQueueClient, make_delivery: Any
) -> None:
    cloud.replies["pull"] = lambda r, b: httpx.Response(401, json={"success": False, "errors": []})
    stop = threading.Event()
    sleep = StopAfter(stop, 4)
    _agent(queue, make_delivery(), sleep=sleep).run_forever(stop)
    assert sleep.delays == [1.0, 2.0, 4.0, 8.0]
    assert cloud.kinds() == ["pull"] * 4  # a pull is one try: the loop is its retry


def test_the_agent_rides_out_an_edge_restart(
    cloud: FakeCloud, queue: CloudflareQueueClient, make_delivery: Any, sleeps: list[float]
) -> None:
    cloud.messages.append(pulled())
    cloud.down_for = 3  # the local edge serves the queue too: three pulls find nobody
    cloud.script("claim", httpx.ConnectError, httpx.ReadTimeout)
    cloud.script("complete", 503, httpx.RemoteProtocolError)
    stop = threading.Event()
    cloud.on_call = lambda call: stop.set() if call.kind == "complete" else None
    sleep = StopAfter(stop, 99)
    _agent(queue, make_delivery(), sleep=sleep).run_forever(stop)
    assert sleep.delays == [1.0, 2.0, 4.0]  # the loop's backoff while the queue was down
    assert sleeps == [1.0, 2.0, 1.0, 2.0]  # claim and complete retried in place
    kinds = [k for k in cloud.kinds() if k != "progress"]
    assert kinds == ["pull"] * 4 + ["claim"] * 3 + ["ack", "get", "get", "put"] + ["complete"] * 3


def test_claim_retries_running_out_hands_the_message_back_and_pulling_goes_on(
    cloud: FakeCloud, queue: CloudflareQueueClient, make_delivery: Any
) -> None:
    cloud.messages.extend([pulled(lease_id="a"), pulled(lease_id="b")])
    cloud.script("claim", *[httpx.ConnectError] * 6)
    cloud.script("ack", *[503] * 6)  # and even the hand-back fails
    stop = threading.Event()
    cloud.on_call = lambda call: stop.set() if call.kind == "complete" else None
    _agent(queue, make_delivery(), sleep=StopAfter(stop, 99)).run_forever(stop)
    kinds = cloud.kinds()
    assert kinds.count("claim") == 7 and kinds.count("complete") == 1
    assert kinds.count("pull") == 2


def test_unexpected_errors_in_the_loop_are_survived(
    queue: CloudflareQueueClient, make_delivery: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    delivery: MessageDelivery = make_delivery()
    calls = iter([RuntimeError("bug"), None])

    def run_once(stop: threading.Event | None = None) -> Outcome | None:
        error = next(calls)
        if error:
            raise error
        return None

    stop = threading.Event()
    sleep = StopAfter(stop, 2)
    agent = _agent(queue, delivery, sleep=sleep)
    monkeypatch.setattr(agent, "run_once", run_once)
    agent.run_forever(stop)
    assert sleep.delays == [1.0, 0.25]


def test_stop_event_ends_run_forever(queue: CloudflareQueueClient, make_delivery: Any) -> None:
    stop = threading.Event()
    agent = Agent(queue, make_delivery())
    thread = threading.Thread(target=agent.run_forever, args=(stop,))
    thread.start()
    stop.set()  # the real wait is stop.wait, so the idle sleep ends at once
    thread.join(timeout=5)
    assert not thread.is_alive()


def test_a_message_pulled_while_stopping_is_handed_back_unclaimed(
    cloud: FakeCloud, queue: CloudflareQueueClient, make_delivery: Any
) -> None:
    cloud.messages.append(pulled())
    stop = threading.Event()
    cloud.on_call = lambda call: stop.set() if call.kind == "pull" else None  # mid-pull
    _agent(queue, make_delivery()).run_forever(stop)
    assert cloud.kinds() == ["pull", "ack"]
    assert cloud.bodies("ack") == [
        {"acks": [], "retries": [{"lease_id": "lease-1", "delay_seconds": 0}]}
    ]


def _stop_when_generating(cloud: FakeCloud, stop: threading.Event) -> None:
    def on_call(call: Any) -> None:
        if call.kind == "progress" and call.body["stage"] == "generating":
            stop.set()

    cloud.on_call = on_call


def test_shutdown_lets_a_job_finish_within_the_grace_period(
    cloud: FakeCloud, queue: CloudflareQueueClient, make_delivery: Any
) -> None:
    cloud.messages.extend([pulled(lease_id="a"), pulled(lease_id="b")])
    stop = threading.Event()
    _stop_when_generating(cloud, stop)
    engine = FakeEngine(steps=[(50.0, Stage.GENERATING, None)], silent_for=0.05)
    _agent(queue, make_delivery(engine), shutdown_grace_seconds=30.0).run_forever(stop)
    kinds = cloud.kinds()
    assert kinds.count("complete") == 1 and "fail" not in kinds
    assert kinds.count("pull") == 1  # no more pulls once stopping
    assert len(cloud.messages) == 1


def test_shutdown_grace_running_out_hands_the_job_back_and_the_loop_ends(
    cloud: FakeCloud, queue: CloudflareQueueClient, make_delivery: Any
) -> None:
    cloud.messages.append(pulled())
    stop = threading.Event()
    _stop_when_generating(cloud, stop)
    engine = FakeEngine(
        steps=[(10.0, Stage.GENERATING, None)], wait_for_cancel=5.0, error=CancelledError()
    )
    agent = _agent(queue, make_delivery(engine), shutdown_grace_seconds=0.0)
    started = time.monotonic()
    agent.run_forever(stop)
    assert time.monotonic() - started < 4.0  # not the engine's 5 s: it was cancelled
    assert engine.saw_cancel
    assert cloud.bodies("fail") == [SHUTDOWN_FAIL]
    kinds = cloud.kinds()
    assert "put" not in kinds and "complete" not in kinds
    assert kinds.count("pull") == 1


def test_grace_watcher_calls_expire_once_after_the_deadline() -> None:
    stop, expired = threading.Event(), threading.Event()
    with shutdown_grace(stop, 0.0, expired.set):
        assert not expired.wait(0.02)  # nothing before the stop request
        stop.set()
        assert expired.wait(5)


def test_grace_watcher_does_not_fire_when_the_loop_ends_in_time() -> None:
    stop, calls = threading.Event(), []
    with shutdown_grace(stop, 30.0, lambda: calls.append(1)):
        stop.set()
    assert calls == []


def test_grace_watcher_left_waiting_when_the_loop_dies_without_a_stop() -> None:
    stop, calls = threading.Event(), []
    with pytest.raises(RuntimeError), shutdown_grace(stop, 0.0, lambda: calls.append(1)):
        raise RuntimeError("boom")
    stop.set()  # let the daemon watcher end; the loop is over, so no expiry is due
    assert calls == []


def test_a_cancelled_job_goes_back_to_pulling(
    cloud: FakeCloud, queue: CloudflareQueueClient, make_delivery: Any
) -> None:
    cloud.messages.extend([pulled(lease_id="a"), pulled(lease_id="b")])
    cancels = iter([True])

    def progress(request: httpx.Request, body: dict[str, Any]) -> httpx.Response:
        cancel = body["stage"] == "generating" and next(cancels, False)
        return httpx.Response(200, json={"cancel_requested": cancel})

    cloud.replies["progress"] = progress
    stop = threading.Event()
    cloud.on_call = lambda call: stop.set() if call.kind == "complete" else None
    engine = FakeEngine(steps=[(10.0, Stage.GENERATING, None)], wait_for_cancel=0.2)
    _agent(queue, make_delivery(engine), sleep=StopAfter(stop, 99)).run_forever(stop)
    kinds = cloud.kinds()
    assert kinds.count("claim") == 2 and kinds.count("put") == 1
    assert kinds.count("complete") == 1 and "fail" not in kinds
    assert kinds.index("put") > kinds.index("claim", kinds.index("claim") + 1)  # job b only


class Ticks:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_idle_heartbeats_name_the_pod_at_most_once_per_interval(
    cloud: FakeCloud, edge: EdgeClient
) -> None:
    ticks = Ticks()
    beat = IdleHeartbeat(edge, agent_id="a1", pod_id="pod-9", interval_seconds=30, clock=ticks)
    assert beat.beat_if_due() is False
    ticks.now = 29.0
    assert beat.beat_if_due() is False
    assert cloud.bodies("heartbeat") == [
        {"agent_id": "a1", "pod_id": "pod-9", "busy": False, "job_id": None}
    ]
    ticks.now = 30.0
    beat.beat_if_due()
    assert len(cloud.bodies("heartbeat")) == 2


def test_a_drained_agent_stops_pulling_keeps_heartbeating_and_resumes_when_undrained(
    cloud: FakeCloud, queue: CloudflareQueueClient, edge: EdgeClient, make_delivery: Any
) -> None:
    ticks = Ticks()
    answers = iter([True, True, False])
    cloud.replies["heartbeat"] = lambda request, body: httpx.Response(
        200, json={"drain": next(answers, False)}
    )
    cloud.messages.append(pulled(lease_id="after-drain"))
    beat = IdleHeartbeat(edge, agent_id="a1", pod_id="pod-9", interval_seconds=30, clock=ticks)
    stop = threading.Event()
    delays: list[float] = []

    def sleep(delay: float) -> None:
        delays.append(delay)
        ticks.now += delay
        if len(delays) >= 4:
            stop.set()

    _agent(queue, make_delivery(), sleep=sleep, heartbeat=beat).run_forever(stop)
    kinds = cloud.kinds()
    # Two drained rounds pull nothing; back in service, the queued job runs.
    assert kinds[:3] == ["heartbeat", "heartbeat", "heartbeat"]
    assert delays[:2] == [30, 30]
    assert "complete" in kinds and kinds.index("pull") > 2


def test_a_failed_heartbeat_keeps_the_last_answer(cloud: FakeCloud, edge: EdgeClient) -> None:
    ticks = Ticks()
    cloud.replies["heartbeat"] = lambda request, body: httpx.Response(200, json={"drain": True})
    beat = IdleHeartbeat(edge, agent_id="a1", pod_id=None, interval_seconds=30, clock=ticks)
    assert beat.beat_if_due() is True
    cloud.script("heartbeat", 503)
    ticks.now = 31.0
    assert beat.beat_if_due() is True  # the edge did not answer: still drained
    assert beat.draining
