"""The pull loop: backoff while idle or failing, one message at a time, clean stop."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest

from gpu_agent.agent import Agent, Backoff
from gpu_agent.queue_client import CloudflareQueueClient
from gpu_agent.runner import JobRunner, Outcome

from .conftest import FakeCloud, pulled


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


def test_backoff_doubles_to_the_ceiling_with_downward_jitter() -> None:
    backoff = Backoff(initial=0.25, maximum=3.0, jitter=0.0)
    assert [backoff.next() for _ in range(6)] == [0.25, 0.5, 1.0, 2.0, 3.0, 3.0]
    backoff.reset()
    assert backoff.next() == 0.25
    jittered = Backoff(initial=1.0, maximum=3.0, jitter=0.5, rand=lambda: 1.0)
    assert jittered.next() == 0.5


def test_empty_queue_backs_off(
    cloud: FakeCloud, queue: CloudflareQueueClient, make_runner: Any
) -> None:
    stop = threading.Event()
    sleep = StopAfter(stop, 6)
    agent = Agent(queue, make_runner(), idle_backoff=Backoff(jitter=0.0), sleep=sleep)
    agent.run_forever(stop)
    assert sleep.delays == [0.25, 0.5, 1.0, 2.0, 3.0, 3.0]
    assert cloud.kinds() == ["pull"] * 6


def test_work_resets_the_backoff_and_runs_one_at_a_time(
    cloud: FakeCloud, queue: CloudflareQueueClient, make_runner: Any
) -> None:
    stop = threading.Event()
    sleep = StopAfter(stop, 3)
    agent = Agent(queue, make_runner(), idle_backoff=Backoff(jitter=0.0), sleep=sleep)
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
    cloud: FakeCloud, queue: CloudflareQueueClient, make_runner: Any
) -> None:
    batch = [pulled(lease_id="a"), pulled(lease_id="b")]
    body = {"success": True, "result": {"messages": [m.model_dump() for m in batch]}}
    cloud.replies["pull"] = lambda r, b: httpx.Response(200, json=body)
    answers = iter([httpx.Response(500, json={"success": False}), None])

    def ack(request: httpx.Request, payload: dict[str, Any]) -> httpx.Response:
        answer = next(answers, None)
        return answer or httpx.Response(200, json={"success": True, "result": {}})

    cloud.replies["ack"] = ack
    agent = Agent(queue, make_runner())
    assert agent.run_once() is Outcome.COMPLETED  # a failed release is only logged
    assert cloud.bodies("ack")[0] == {
        "acks": [],
        "retries": [{"lease_id": "b", "delay_seconds": 0}],
    }


def test_pull_errors_back_off_longer_and_never_kill_the_agent(
    cloud: FakeCloud, queue: CloudflareQueueClient, make_runner: Any
) -> None:
    cloud.replies["pull"] = lambda r, b: httpx.Response(401, json={"success": False, "errors": []})
    stop = threading.Event()
    sleep = StopAfter(stop, 4)
    agent = Agent(
        queue,
        make_runner(),
        error_backoff=Backoff(initial=1.0, maximum=30.0, jitter=0.0),
        sleep=sleep,
    )
    agent.run_forever(stop)
    assert sleep.delays == [1.0, 2.0, 4.0, 8.0]


def test_unexpected_errors_in_the_loop_are_survived(
    queue: CloudflareQueueClient, make_runner: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner: JobRunner = make_runner()
    agent = Agent(queue, runner, error_backoff=Backoff(jitter=0.0))
    calls = iter([RuntimeError("bug"), None])

    def run_once() -> Outcome | None:
        error = next(calls)
        if error:
            raise error
        return None

    monkeypatch.setattr(agent, "run_once", run_once)
    stop = threading.Event()
    sleep = StopAfter(stop, 2)
    agent._sleep = sleep
    agent.run_forever(stop)
    assert len(sleep.delays) == 2


def test_stop_event_ends_run_forever(queue: CloudflareQueueClient, make_runner: Any) -> None:
    stop = threading.Event()
    agent = Agent(queue, make_runner())
    thread = threading.Thread(target=agent.run_forever, args=(stop,))
    thread.start()
    stop.set()  # the real wait is stop.wait, so the idle sleep ends at once
    thread.join(timeout=5)
    assert not thread.is_alive()
