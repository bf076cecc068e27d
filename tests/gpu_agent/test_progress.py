"""Progress mapping, the report schedule and the heartbeat thread."""

from __future__ import annotations

import math
import threading

import pytest

from contracts import ProgressReply, Stage
from gpu_agent.edge_client import ClaimConflict, EdgeError, JobGone
from gpu_agent.progress import CancelSignal, Heartbeat, ProgressMapper, ProgressReporter, Snapshot
from gpu_agent.retry import RetryPolicy


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
        lost_after=kw.get("lost_after", 180.0),
        min_interval=1.0,
        retry=RetryPolicy(base_delay=kw.get("retry", 1.0), max_delay=5.0, jitter=0.0),
        clock=clock,
    )


def _threaded(edge: Edge, cancel: CancelSignal | None = None, **kw: float) -> ProgressReporter:
    """A reporter on the real clock, for the heartbeat thread's own tests."""
    return ProgressReporter(
        edge,
        cancel or CancelSignal(),
        heartbeat_interval=kw.get("heartbeat", 60.0),
        lost_after=180.0,
        min_interval=kw.get("min_interval", 1.0),
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


def test_failed_sends_back_off_exponentially_then_recover() -> None:
    edge, clock = Edge(EdgeError("down"), RuntimeError("bug"), EdgeError("down")), Clock()
    reporter = _reporter(edge, clock, retry=1.5)
    assert reporter.send_if_due() is True
    assert reporter.seconds_until_due() == 1.5
    reporter.update(Snapshot(5.0, Stage.GENERATING))  # even a stage change waits
    assert reporter.seconds_until_due() == 1.5
    clock.now += 1.5
    assert reporter.send_if_due() is True  # fails again (unexpected error): still survives
    assert reporter.seconds_until_due() == 3.0
    clock.now += 3.0
    assert reporter.send_if_due() is True
    assert reporter.seconds_until_due() == 5.0  # the policy's ceiling
    clock.now += 5.0
    assert reporter.send_if_due() is True
    assert reporter.last_sent == Snapshot(5.0, Stage.GENERATING)
    assert reporter.seconds_until_due() == 10.0
    assert edge.sent == [Snapshot(0.0, Stage.DOWNLOADING)] + [Snapshot(5.0, Stage.GENERATING)] * 3


def test_retry_delay_never_exceeds_the_heartbeat_interval() -> None:
    edge, clock = Edge(EdgeError("down")), Clock()
    reporter = _reporter(edge, clock, heartbeat=0.5, retry=4.0)
    reporter.send_if_due()
    assert reporter.seconds_until_due() == 0.5


def test_failing_heartbeats_keep_the_job_until_the_edge_must_have_given_up() -> None:
    edge, clock, cancel = Edge(*[EdgeError("down")] * 100), Clock(), CancelSignal()
    reporter = _reporter(edge, clock, cancel, lost_after=120.0)
    while not cancel.is_set():
        clock.now += reporter.seconds_until_due()
        reporter.send_if_due()
        # Until 120 s without contact: the engine keeps running and the reports go on.
        assert cancel.is_set() is (clock.now >= 100.0 + 120.0)
    assert cancel.reason == CancelSignal.EDGE_LOST
    assert clock.now <= 100.0 + 125.0  # given up at the first try after that
    assert len(edge.sent) > 20


def test_a_report_that_gets_through_restarts_the_edge_lost_clock() -> None:
    edge, clock = Edge(EdgeError("down"), ProgressReply(), EdgeError("down")), Clock()
    cancel = CancelSignal()
    reporter = _reporter(edge, clock, cancel, lost_after=120.0)
    clock.now += 100.0
    reporter.send_if_due()  # fails 100 s after the claim
    clock.now += 5.0
    reporter.send_if_due()  # gets through
    clock.now += 100.0
    reporter.update(Snapshot(1.0, Stage.DOWNLOADING))
    reporter.send_if_due()  # fails, but only 100 s after the last contact
    assert not cancel.is_set()


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
    reporter = _threaded(edge, heartbeat=0.01, min_interval=0.0)
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
    reporter = _threaded(edge)
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
    reporter = _threaded(edge, cancel, heartbeat=0.01)
    with Heartbeat(reporter):
        assert cancel.is_set()
        threading.Event().wait(0.05)
    assert len(edge.sent) == 1


def test_an_abort_does_not_wait_for_a_report_in_flight() -> None:
    release, sending = threading.Event(), threading.Event()

    def slow(snapshot: Snapshot) -> ProgressReply:
        if snapshot.stage is Stage.GENERATING:
            sending.set()
            release.wait(5)
        return ProgressReply()

    reporter = _threaded(slow)  # type: ignore[arg-type]
    try:
        with pytest.raises(KeyboardInterrupt), Heartbeat(reporter):
            reporter.update(Snapshot(5.0, Stage.GENERATING))
            assert sending.wait(5)
            raise KeyboardInterrupt  # a second Ctrl-C: out at once, not after the report
    finally:
        release.set()
