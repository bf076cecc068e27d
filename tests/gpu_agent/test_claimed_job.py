"""One claimed job: its ending (complete, fail, stopped), its reports, heartbeats and shutdown."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from contracts import Stage
from gpu_agent.claimed_job import INTERNAL_ERROR_MESSAGE
from gpu_agent.outcome import Outcome
from infinitetalk.engine import CancelledError, EngineError, InvalidInputError

from .conftest import (
    FakeCloud,
    FakeEngine,
    FakeProbes,
    envelope,
    fail_body,
    interrupt_on,
    pulled,
    shutdown_fail_only,
)


def test_heartbeat_reports_while_the_engine_is_silent(cloud: FakeCloud, make_delivery: Any) -> None:
    cloud.heartbeat_interval = 0.02
    engine = FakeEngine(steps=[(50.0, Stage.GENERATING, None)], silent_for=0.25)
    assert make_delivery(engine).handle(pulled()) is Outcome.COMPLETED
    generating = [b for b in cloud.bodies("progress") if b["progress"] == 50.0]
    assert len(generating) >= 3  # the same state re-sent as a heartbeat


def test_failure_messages_do_not_show_agent_paths(
    cloud: FakeCloud, make_delivery: Any, fake_probes: FakeProbes
) -> None:
    def refuse(kind: str, path: Path) -> None:
        if kind == "image":
            raise InvalidInputError(f"cannot identify image file '{path}'")

    fake_probes.on_probe = refuse
    assert make_delivery().handle(pulled()) is Outcome.FAILED
    assert fail_body(cloud)["message"] == "cannot identify image file 'image.png'"


def test_long_engine_message_is_truncated(cloud: FakeCloud, make_delivery: Any) -> None:
    error = EngineError("GENERATION_FAILED", "x" * 5000)
    assert make_delivery(FakeEngine(error=error)).handle(pulled()) is Outcome.FAILED
    assert len(fail_body(cloud)["message"]) == 2000


def test_unexpected_exception_is_internal_error_retryable(
    cloud: FakeCloud, make_delivery: Any, work_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = FakeEngine(error=RuntimeError("secret detail /opt/model"))
    assert make_delivery(engine).handle(pulled()) is Outcome.FAILED
    assert fail_body(cloud) == {
        "claim_token": "claim-tok",
        "code": "INTERNAL_ERROR",
        "message": INTERNAL_ERROR_MESSAGE,
        "retryable": True,
    }
    assert "secret detail" in caplog.text  # traceback only in the log
    assert list(work_dir.iterdir()) == []


def test_unusable_work_dir_is_reported_as_internal_error(
    cloud: FakeCloud, make_delivery: Any, work_dir: Path
) -> None:
    work_dir.parent.mkdir(parents=True, exist_ok=True)
    work_dir.write_text("a file where the work dir should be")
    assert make_delivery().handle(pulled()) is Outcome.FAILED
    assert fail_body(cloud)["code"] == "INTERNAL_ERROR"


# --- cancels ----------------------------------------------------------------------


def test_cancel_requested_in_heartbeat_stops_the_engine(
    cloud: FakeCloud, make_delivery: Any, work_dir: Path
) -> None:
    def reply(request: httpx.Request, body: dict[str, Any]) -> httpx.Response:
        return httpx.Response(200, json={"cancel_requested": body["stage"] == "generating"})

    cloud.replies["progress"] = reply
    engine = FakeEngine(
        steps=[(1.0, Stage.GENERATING, None)], wait_for_cancel=5.0, error=CancelledError()
    )
    assert make_delivery(engine).handle(pulled()) is Outcome.CANCELLED
    assert engine.saw_cancel
    kinds = cloud.kinds()
    assert "put" not in kinds and "complete" not in kinds and "fail" not in kinds
    assert list(work_dir.iterdir()) == []


def test_engine_returning_after_cancel_is_not_uploaded(
    cloud: FakeCloud, make_delivery: Any
) -> None:
    cloud.replies["progress"] = lambda r, b: httpx.Response(
        200, json={"cancel_requested": b["stage"] == "generating"}
    )
    engine = FakeEngine(steps=[(1.0, Stage.GENERATING, None)], wait_for_cancel=5.0)
    assert make_delivery(engine).handle(pulled()) is Outcome.CANCELLED
    assert engine.saw_cancel
    assert not {"put", "complete", "fail"} & set(cloud.kinds())


@pytest.mark.parametrize("error", [RuntimeError("x"), EngineError("GENERATION_FAILED", "x")])
def test_engine_error_after_cancel_is_not_reported(
    cloud: FakeCloud, make_delivery: Any, error: Exception
) -> None:
    cloud.replies["progress"] = lambda r, b: httpx.Response(
        200, json={"cancel_requested": b["stage"] == "generating"}
    )
    engine = FakeEngine(steps=[(1.0, Stage.GENERATING, None)], wait_for_cancel=5.0, error=error)
    assert make_delivery(engine).handle(pulled()) is Outcome.CANCELLED
    assert "fail" not in cloud.kinds()


def test_stale_claim_on_progress_stops_the_job(cloud: FakeCloud, make_delivery: Any) -> None:
    def reply(request: httpx.Request, body: dict[str, Any]) -> httpx.Response:
        if body["stage"] == "generating":
            return envelope(409, "CONFLICT", "stale claim token")
        return httpx.Response(200, json={"cancel_requested": False})

    cloud.replies["progress"] = reply
    engine = FakeEngine(
        steps=[(1.0, Stage.GENERATING, None)], wait_for_cancel=5.0, error=CancelledError()
    )
    assert make_delivery(engine).handle(pulled()) is Outcome.CANCELLED
    assert engine.saw_cancel
    assert not {"put", "complete", "fail"} & set(cloud.kinds())


def test_cancel_before_download_skips_everything(cloud: FakeCloud, make_delivery: Any) -> None:
    cloud.replies["progress"] = lambda r, b: httpx.Response(200, json={"cancel_requested": True})
    engine = FakeEngine()
    assert make_delivery(engine).handle(pulled()) is Outcome.CANCELLED
    assert engine.requests == []
    assert cloud.kinds() == ["claim", "ack", "progress"]


def test_cancel_arriving_during_upload_prevents_complete(
    cloud: FakeCloud, make_delivery: Any
) -> None:
    cloud.replies["progress"] = lambda r, b: httpx.Response(
        200, json={"cancel_requested": b["stage"] == "uploading"}
    )
    asked = threading.Event()
    cloud.on_call = lambda call: (
        asked.set() if call.kind == "progress" and call.body["stage"] == "uploading" else None
    )

    def put(request: httpx.Request, body: Any) -> httpx.Response:
        assert asked.wait(5)  # the heartbeat's report is in flight; its reply cancels
        return httpx.Response(200)

    cloud.replies["put"] = put
    # The reply lands while the body streams (the upload aborts) or right after it (the
    # complete is skipped); either way the job is dropped.
    assert make_delivery().handle(pulled()) is Outcome.CANCELLED
    assert "complete" not in cloud.kinds() and "fail" not in cloud.kinds()


# --- final reports ----------------------------------------------------------------


def test_complete_is_retried_on_transient_errors(
    cloud: FakeCloud, make_delivery: Any, sleeps: list[float]
) -> None:
    answers = iter([envelope(503, "STORAGE_ERROR"), httpx.Response(200, json={})])
    cloud.replies["complete"] = lambda r, b: next(answers)
    assert make_delivery().handle(pulled()) is Outcome.COMPLETED
    assert cloud.kinds().count("complete") == 2
    assert sleeps == [1.0]


def test_complete_that_never_gets_through_is_reported_as_failed(
    cloud: FakeCloud, make_delivery: Any, sleeps: list[float]
) -> None:
    cloud.replies["complete"] = lambda r, b: envelope(500, "INTERNAL_ERROR")
    assert make_delivery().handle(pulled()) is Outcome.FAILED
    assert cloud.kinds().count("complete") == 6
    assert sleeps == [1.0, 2.0, 4.0, 8.0, 10.0]
    assert "fail" not in cloud.kinds()


def test_complete_with_a_stale_claim_is_dropped(cloud: FakeCloud, make_delivery: Any) -> None:
    cloud.replies["complete"] = lambda r, b: envelope(409, "CONFLICT")
    assert make_delivery().handle(pulled()) is Outcome.CANCELLED
    assert cloud.kinds().count("complete") == 1


def test_fail_with_a_stale_claim_is_not_retried(cloud: FakeCloud, make_delivery: Any) -> None:
    cloud.replies["fail"] = lambda r, b: envelope(409, "CONFLICT")
    engine = FakeEngine(error=EngineError("TIMEOUT", "slow"))
    assert make_delivery(engine).handle(pulled()) is Outcome.FAILED
    assert cloud.kinds().count("fail") == 1


def test_fail_is_retried_on_transient_errors(
    cloud: FakeCloud, make_delivery: Any, sleeps: list[float]
) -> None:
    cloud.script("fail", httpx.ConnectError, 502)
    engine = FakeEngine(error=EngineError("TIMEOUT", "slow"))
    assert make_delivery(engine).handle(pulled()) is Outcome.FAILED
    assert cloud.kinds().count("fail") == 3
    assert sleeps == [1.0, 2.0]


@pytest.mark.parametrize("status", [400, 401, 413, 422])
def test_final_answers_to_reports_are_not_retried(
    cloud: FakeCloud, make_delivery: Any, status: int
) -> None:
    cloud.script("complete", envelope(status, "INVALID_INPUT"))
    assert make_delivery().handle(pulled()) is Outcome.FAILED  # undelivered: the edge times it out
    assert cloud.kinds().count("complete") == 1
    assert "fail" not in cloud.kinds()


def test_a_409_after_a_retried_complete_drops_the_job(cloud: FakeCloud, make_delivery: Any) -> None:
    cloud.script("complete", 503, envelope(409, "CONFLICT", "stale claim token"))
    assert make_delivery().handle(pulled()) is Outcome.CANCELLED
    assert cloud.kinds().count("complete") == 2
    assert "fail" not in cloud.kinds()


# --- heartbeats -------------------------------------------------------------------


def test_failing_heartbeats_do_not_stop_the_engine(cloud: FakeCloud, make_delivery: Any) -> None:
    cloud.heartbeat_interval = 0.01
    cloud.replies["progress"] = lambda r, b: envelope(503, "STORAGE_ERROR")
    engine = FakeEngine(steps=[(50.0, Stage.GENERATING, None)], silent_for=0.1)
    assert make_delivery(engine).handle(pulled()) is Outcome.COMPLETED
    assert cloud.kinds().count("progress") > 3  # kept trying meanwhile
    assert cloud.kinds()[-1] == "complete"


def test_an_edge_unreachable_for_too_long_stops_the_job_silently(
    cloud: FakeCloud, make_delivery: Any, work_dir: Path
) -> None:
    def refuse(request: httpx.Request, body: Any) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    cloud.replies["progress"] = refuse
    engine = FakeEngine(
        steps=[(10.0, Stage.GENERATING, None)], wait_for_cancel=5.0, error=CancelledError()
    )
    delivery = make_delivery(engine, edge_lost_after_seconds=0.05)
    assert delivery.handle(pulled()) is Outcome.CANCELLED
    assert engine.saw_cancel
    assert not {"put", "complete", "fail"} & set(cloud.kinds())
    assert list(work_dir.iterdir()) == []


def test_cancel_request_stops_the_engine_within_5_seconds(
    cloud: FakeCloud, make_delivery: Any
) -> None:
    asked_at: list[float] = []

    def progress(request: httpx.Request, body: dict[str, Any]) -> httpx.Response:
        cancel = body["stage"] == "generating"
        if cancel:
            asked_at.append(time.monotonic())
        return httpx.Response(200, json={"cancel_requested": cancel})

    cloud.replies["progress"] = progress
    engine = FakeEngine(steps=[(1.0, Stage.GENERATING, None)], wait_for_cancel=10.0)
    assert make_delivery(engine).handle(pulled()) is Outcome.CANCELLED
    assert engine.stopped_at is not None and engine.stopped_at - asked_at[0] < 5.0
    assert not {"put", "complete", "fail"} & set(cloud.kinds())


def test_progress_changes_reach_the_edge_at_least_every_second(
    cloud: FakeCloud, make_delivery: Any
) -> None:
    """Every step of an engine that moves each (fake) second reaches the edge.

    So while the engine makes progress, a cancel is seen within about a second.
    """
    now = [1000.0]
    received = threading.Condition()
    cloud.on_call = lambda call: _notify(received) if call.kind == "progress" else None

    class Stepper(FakeEngine):
        def generate(
            self, request: Any, workdir: Path, on_progress: Callable[..., None], cancelled: Any
        ) -> Any:
            for step in range(1, 11):
                now[0] += 1.0
                on_progress(step * 10.0, Stage.GENERATING, None)
                with received:
                    assert received.wait_for(partial(_reported, cloud, 5.0 + 9.0 * step), 5)
            return super().generate(request, workdir, on_progress, cancelled)

    engine = Stepper(steps=[])
    assert make_delivery(engine, clock=lambda: now[0]).handle(pulled()) is Outcome.COMPLETED
    generating = [b["progress"] for b in cloud.bodies("progress") if b["stage"] == "generating"]
    assert generating[:10] == [5.0 + 9.0 * step for step in range(1, 11)]


def _reported(cloud: FakeCloud, progress: float) -> bool:
    return any(body["progress"] == progress for body in cloud.bodies("progress"))


def _notify(condition: threading.Condition) -> None:
    with condition:
        condition.notify_all()


# --- shutdown ---------------------------------------------------------------------


def test_interrupt_while_the_engine_runs_hands_the_job_back(
    cloud: FakeCloud, make_delivery: Any, work_dir: Path
) -> None:
    engine = FakeEngine(
        steps=[(10.0, Stage.GENERATING, None)], wait_for_cancel=5.0, error=CancelledError()
    )
    delivery = make_delivery(engine)
    interrupt_on(
        cloud, delivery, lambda c: c.kind == "progress" and c.body["stage"] == "generating"
    )
    assert delivery.handle(pulled()) is Outcome.INTERRUPTED
    assert engine.saw_cancel
    shutdown_fail_only(cloud)
    assert "put" not in cloud.kinds()
    assert list(work_dir.iterdir()) == []


def test_interrupt_is_reported_even_when_the_engine_fails_on_it(
    cloud: FakeCloud, make_delivery: Any
) -> None:
    engine = FakeEngine(
        steps=[(10.0, Stage.GENERATING, None)],
        wait_for_cancel=5.0,
        error=EngineError("GENERATION_FAILED", "killed"),
    )
    delivery = make_delivery(engine)
    interrupt_on(
        cloud, delivery, lambda c: c.kind == "progress" and c.body["stage"] == "generating"
    )
    assert delivery.handle(pulled()) is Outcome.INTERRUPTED
    shutdown_fail_only(cloud)


def test_interrupt_during_a_download_skips_the_engine(cloud: FakeCloud, make_delivery: Any) -> None:
    engine = FakeEngine()
    delivery = make_delivery(engine)
    interrupt_on(cloud, delivery, lambda c: c.kind == "get")
    assert delivery.handle(pulled()) is Outcome.INTERRUPTED
    assert engine.requests == []
    shutdown_fail_only(cloud)


def test_interrupt_between_upload_tries_stops_the_upload(
    cloud: FakeCloud, make_delivery: Any
) -> None:
    delivery = make_delivery()
    cloud.script("put", 503)
    interrupt_on(cloud, delivery, lambda c: c.kind == "put")
    assert delivery.handle(pulled()) is Outcome.INTERRUPTED
    assert cloud.kinds().count("put") == 1
    shutdown_fail_only(cloud)


def test_interrupt_after_the_upload_still_completes(cloud: FakeCloud, make_delivery: Any) -> None:
    delivery = make_delivery()
    interrupt_on(cloud, delivery, lambda c: c.kind == "put")  # the body is already sent
    assert delivery.handle(pulled()) is Outcome.COMPLETED
    assert cloud.kinds()[-1] == "complete" and "fail" not in cloud.kinds()


def test_a_client_cancel_wins_over_a_later_shutdown(cloud: FakeCloud, make_delivery: Any) -> None:
    cloud.replies["progress"] = lambda r, b: httpx.Response(
        200, json={"cancel_requested": b["stage"] == "generating"}
    )
    engine = FakeEngine(
        steps=[(1.0, Stage.GENERATING, None)], wait_for_cancel=5.0, error=CancelledError()
    )
    delivery = make_delivery(engine)
    cloud.on_call = lambda c: delivery.interrupt() if c.kind == "progress" else None
    # The first report (downloading) interrupts; the cancel reply comes later but the
    # job is already stopped for the shutdown: it is handed back, not silently dropped.
    assert delivery.handle(pulled()) is Outcome.INTERRUPTED
    shutdown_fail_only(cloud)


def test_interrupt_while_probing_the_inputs_skips_the_engine(
    cloud: FakeCloud, make_delivery: Any, fake_probes: FakeProbes
) -> None:
    engine = FakeEngine()
    delivery = make_delivery(engine)
    fake_probes.on_probe = lambda kind, path: delivery.interrupt() if kind == "audio" else None
    assert delivery.handle(pulled()) is Outcome.INTERRUPTED
    assert engine.requests == []
    shutdown_fail_only(cloud)
