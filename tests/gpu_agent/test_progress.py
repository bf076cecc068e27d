"""Progress mapping, the report schedule and the heartbeat thread."""

from __future__ import annotations

import math
import threading

import pytest

from contracts import ProgressReply, Stage
from gpu_agent.edge_client import ClaimConflict, EdgeError, JobGone
from gpu_agent.progress import CancelSignal, Heartbeat, ProgressMapper, ProgressReporter, Snapshot


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Edge:
    """Records snapshots; answers with scripted replies or exceptions."""

    def __init__(self, *answers: ProgressReply | Exception) -> None:
        self.sent: list[Snapshot] = []
        self.answers = list(answers)
        self.lock = threading.Lock()

    def __call__(self, snapshot: Snapshot) -> ProgressReply:
        with self.lock:
            self.sent.append(snapshot)
            answer = self.answers.pop(0) if self.answers else ProgressReply()
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_mapper_spans_and_monotonic() -> None:
    mapper = ProgressMapper()
    assert mapper.downloading(0.0) == Snapshot(0.0, Stage.DOWNLOADING)
    assert mapper.downloading(1.0).progress == 5.0
    assert mapper.engine(0, Stage.GENERATING, 30.0) == Snapshot(5.0, Stage.GENERATING, 30.0)
    assert mapper.engine(50, Stage.GENERATING, 10.0).progress == 50.0
    assert mapper.engine(20, Stage.ENCODING, 1.0) == Snapshot(50.0, Stage.ENCODING, 1.0)
    assert mapper.engine(100, Stage.ENCODING, 0.0).progress == 95.0
    assert mapper.uploading(0.5) == Snapshot(97.5, Stage.UPLOADING)
    assert mapper.uploading(2.0).progress == 100.0


@pytest.mark.parametrize(
    ("stage", "expected"),
    [
        ("encoding", Stage.ENCODING),
        (Stage.UPLOADING, Stage.GENERATING),
        ("bogus", Stage.GENERATING),
    ],
)
def test_mapper_keeps_only_engine_stages(stage: object, expected: Stage) -> None:
    assert ProgressMapper().engine(10, stage, None).stage is expected  # type: ignore[arg-type]


@pytest.mark.parametrize("eta", [-1.0, math.inf, math.nan])
def test_mapper_drops_nonsense(eta: float) -> None:
    snapshot = ProgressMapper().engine(math.nan, Stage.GENERATING, eta)
    assert snapshot == Snapshot(5.0, Stage.GENERATING, None)


def _reporter(
    edge: Edge, clock: Clock, cancel: CancelSignal | None = None, **kw: float
) -> ProgressReporter:
    return ProgressReporter(
        edge,
        cancel or CancelSignal(),
        heartbeat_interval=kw.get("heartbeat", 10.0),
        min_interval=1.0,
        clock=clock,
        retry_delay=kw.get("retry"),
    )


def test_schedule_first_then_throttled_then_heartbeat() -> None:
    edge, clock = Edge(), Clock()
    reporter = _reporter(edge, clock)
    assert reporter.seconds_until_due() == 0  # first report at once
    assert reporter.send_if_due() is True
    assert reporter.send_if_due() is False
    assert reporter.seconds_until_due() == 10.0  # nothing new: heartbeat interval

    reporter.update(Snapshot(2.0, Stage.DOWNLOADING))
    assert reporter.seconds_until_due() == 1.0  # progress change: at most every second
    clock.now += 0.5
    assert reporter.send_if_due() is False
    clock.now += 0.5
    assert reporter.send_if_due() is True

    reporter.update(Snapshot(5.0, Stage.GENERATING))
    assert reporter.seconds_until_due() == 0  # stage change: at once
    reporter.send_if_due()
    clock.now += 9.9
    assert reporter.send_if_due() is False
    clock.now += 0.1
    assert reporter.send_if_due() is True
    assert [s.progress for s in edge.sent] == [0.0, 2.0, 5.0, 5.0]
    assert reporter.last_sent == Snapshot(5.0, Stage.GENERATING)
    assert reporter.current == Snapshot(5.0, Stage.GENERATING)


def test_failed_send_waits_for_the_retry_delay() -> None:
    edge, clock = Edge(EdgeError("down"), RuntimeError("bug")), Clock()
    reporter = _reporter(edge, clock, retry=3.0)
    assert reporter.send_if_due() is True
    assert reporter.seconds_until_due() == 3.0
    reporter.update(Snapshot(5.0, Stage.GENERATING))  # even a stage change waits
    assert reporter.seconds_until_due() == 3.0
    clock.now += 3.0
    assert reporter.send_if_due() is True  # fails again (unexpected error): still survives
    clock.now += 3.0
    assert reporter.send_if_due() is True
    assert reporter.last_sent == Snapshot(5.0, Stage.GENERATING)
    assert reporter.seconds_until_due() == 10.0


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (ProgressReply(cancel_requested=True), CancelSignal.CANCEL_REQUESTED),
        (ClaimConflict("stale", status_code=409), CancelSignal.STALE_CLAIM),
        (JobGone("gone", status_code=404), CancelSignal.JOB_GONE),
    ],
)
def test_cancel_reasons_stop_reporting(answer: object, reason: str) -> None:
    edge, clock, cancel = Edge(answer), Clock(), CancelSignal()  # type: ignore[arg-type]
    reporter = _reporter(edge, clock, cancel)
    reporter.send_if_due()
    assert cancel.is_set() and cancel.reason == reason
    assert reporter.seconds_until_due() == math.inf
    clock.now += 1000
    assert reporter.send_if_due() is False


def test_cancel_signal_keeps_the_first_reason() -> None:
    cancel = CancelSignal()
    assert not cancel.is_set() and cancel.reason is None
    cancel.set("a")
    cancel.set("b")
    assert cancel.reason == "a"


def test_heartbeat_thread_resends_while_silent_and_stops_on_exit() -> None:
    edge = Edge()
    reporter = ProgressReporter(edge, CancelSignal(), heartbeat_interval=0.01, min_interval=0.0)
    with Heartbeat(reporter):
        assert len(edge.sent) >= 1  # the first report is synchronous
        deadline = threading.Event()
        while len(edge.sent) < 4:
            deadline.wait(0.005)
    count = len(edge.sent)
    threading.Event().wait(0.05)
    assert len(edge.sent) == count  # nothing after exit


def test_heartbeat_thread_sends_updates_promptly() -> None:
    edge = Edge()
    reporter = ProgressReporter(edge, CancelSignal(), heartbeat_interval=60.0)
    with Heartbeat(reporter) as heartbeat:
        reporter.update(Snapshot(5.0, Stage.GENERATING))
        waited = threading.Event()
        for _ in range(1000):
            if len(edge.sent) == 2:
                break
            waited.wait(0.005)
        heartbeat.stop()  # stop twice is fine
    assert edge.sent == [Snapshot(0.0, Stage.DOWNLOADING), Snapshot(5.0, Stage.GENERATING)]


def test_heartbeat_after_cancel_idles_until_stopped() -> None:
    edge = Edge(ProgressReply(cancel_requested=True))
    cancel = CancelSignal()
    reporter = ProgressReporter(edge, cancel, heartbeat_interval=0.01)
    with Heartbeat(reporter):
        assert cancel.is_set()
        threading.Event().wait(0.05)
    assert len(edge.sent) == 1
