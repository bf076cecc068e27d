"""The CLI's progress display: labels from the first frame, a bar at any terminal width."""

import io
from typing import Any

import pytest

from avatar_client import progress
from avatar_client.progress import DEFAULT_COLUMNS, MIN_BAR, ProgressDisplay, bar_line
from contracts import JobView
from tests.avatar_client.avatar_fakes import job


def view(**fields: Any) -> JobView:
    return JobView.model_validate(job(**fields))


PENDING = view(status="pending", queue_position=3)
GENERATING = view(status="processing", stage="generating", progress=55.5, eta_seconds=75)


def bar_of(line: str) -> str:
    return line[line.index("[") + 1 : line.index("]")]


def test_the_first_frame_carries_the_label_and_a_bar() -> None:
    out = io.StringIO()
    ProgressDisplay(out, live=True, columns=60)(PENDING)
    frame = out.getvalue()
    assert frame.startswith("\rqueued        0% [")
    assert frame.endswith("] 3 ahead in queue")
    assert len(frame) == 1 + 59


@pytest.mark.parametrize("columns", [0, -1])
def test_a_terminal_without_width_still_gets_a_bar(columns: int) -> None:
    line = bar_line(GENERATING, columns)
    assert len(line) == DEFAULT_COLUMNS - 1
    bar = bar_of(line)
    assert len(bar) > MIN_BAR and bar.count("#") == len(bar) * 55 // 100


def test_a_stream_that_is_no_terminal_is_drawn_at_the_default_width() -> None:
    out = io.StringIO()
    assert progress.terminal_columns(out) == 0
    ProgressDisplay(out, live=True)(GENERATING)
    assert len(out.getvalue()) == 1 + DEFAULT_COLUMNS - 1


def test_a_narrow_terminal_keeps_the_smallest_bar() -> None:
    line = bar_line(GENERATING, 20)
    assert line.startswith("generating   55% [")
    assert len(bar_of(line)) == MIN_BAR and line.endswith("] eta 1m15s")


def test_the_bar_fills_with_the_percent() -> None:
    assert set(bar_of(bar_line(view(status="completed", stage="done", progress=100), 50))) == {"#"}
    assert set(bar_of(bar_line(view(), 50))) == {"-"}


def test_live_frames_overwrite_the_line_and_close_ends_it() -> None:
    out = io.StringIO()
    display = ProgressDisplay(out, live=True, columns=40)
    display.close()
    assert out.getvalue() == ""
    display(PENDING)
    display(GENERATING)
    display.close()
    frames = out.getvalue().split("\r")[1:]
    assert [frame.split()[0] for frame in frames] == ["queued", "generating"]
    # The longer first frame is blanked out by padding, then the line is ended.
    assert frames[1].endswith("eta 1m15s" + " " * 7 + "\n")
    assert len(frames[1]) == len(frames[0]) + 1


def test_plain_lines_only_when_something_but_the_eta_changes() -> None:
    out = io.StringIO()
    display = ProgressDisplay(out, live=False)
    for update in (
        PENDING,
        PENDING,
        view(status="pending", queue_position=2),
        GENERATING,
        view(status="processing", stage="generating", progress=55.9, eta_seconds=60),
        view(status="failed", stage="generating", progress=55.9),
    ):
        display(update)
    display.close()
    assert out.getvalue().splitlines() == [
        "queued 0%, 3 ahead in queue",
        "queued 0%, 2 ahead in queue",
        "generating 55%, eta 1m15s",
        "failed 55%",
    ]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (9.2, "10s"), (60, "1m00s"), (75, "1m15s"), (3600, "1h00m00s"), (3725, "1h02m05s")],
)
def test_durations_round_up(seconds: float, text: str) -> None:
    assert progress.duration(seconds) == text


def test_the_wait_is_shown_only_while_it_means_something() -> None:
    assert progress.describe_wait(view(status="pending")) == ""
    assert progress.describe_wait(view(status="processing", queue_position=1)) == ""
    assert progress.describe_wait(view(status="completed", eta_seconds=3)) == ""
