"""Progress across chunks: the percent formula, monotony, ETA, and upstream's tqdm bars."""

import io
from dataclasses import dataclass, field

import pytest
from tqdm import tqdm

from contracts import Stage
from infinitetalk.upstream.progress import SAMPLING_END, SAMPLING_START, JobProgress, TqdmParser


@dataclass
class Recorder:
    reports: list[tuple[float, Stage, float | None]] = field(default_factory=list)

    def __call__(self, percent: float, stage: Stage, eta: float | None) -> None:
        self.reports.append((percent, stage, eta))

    @property
    def percents(self) -> list[float]:
        return [percent for percent, _, _ in self.reports]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def progress(
    chunks: int = 3, steps: int = 10, frames: int = 200
) -> tuple[JobProgress, Recorder, Clock]:
    recorder, clock = Recorder(), Clock()
    return (
        JobProgress(recorder, chunks=chunks, steps=steps, frames=frames, clock=clock),
        recorder,
        clock,
    )


def test_sampling_maps_finished_chunks_and_steps_into_the_sampling_span() -> None:
    job, recorder, _ = progress(chunks=3, steps=10)
    job.preparing()
    job.step(0, 0)
    job.step(0, 10)
    job.step(1, 5)
    job.step(2, 10)
    span = SAMPLING_END - SAMPLING_START
    assert recorder.percents == pytest.approx(
        [0.0, SAMPLING_START, SAMPLING_START + span / 3, SAMPLING_START + span / 2, SAMPLING_END]
    )
    assert {stage for _, stage, _ in recorder.reports} == {Stage.GENERATING}


def test_eta_comes_from_the_measured_step_rate_plus_the_encode() -> None:
    job, recorder, clock = progress(chunks=2, steps=10, frames=80)
    job.step(0, 1)
    assert recorder.reports[-1][2] is None  # one observation: no rate yet
    clock.now = 20.0
    job.step(0, 5)  # 4 steps in 20 s
    remaining_steps = 20 - 5
    assert recorder.reports[-1][2] == pytest.approx(remaining_steps * 5.0 + 80 / 40.0)


def test_percent_never_goes_back_and_extra_chunks_stretch_the_total() -> None:
    job, recorder, _ = progress(chunks=1, steps=4)
    job.step(0, 4)
    job.step(1, 1)  # upstream covered more audio than planned: now 2 chunks
    job.step(1, 4)
    assert recorder.percents == sorted(recorder.percents)
    assert recorder.percents[-1] == pytest.approx(SAMPLING_END)


def test_encoding_and_finish_report_the_encoding_stage() -> None:
    job, recorder, clock = progress(frames=100)
    job.step(2, 10)
    job.encoding(0, 100)
    clock.now = 2.0
    job.encoding(50, 100)
    job.finished()
    assert [stage for _, stage, _ in recorder.reports[1:]] == [Stage.ENCODING] * 3
    assert recorder.reports[2][2] == pytest.approx(2.0)  # 50 frames left at 25 fps
    assert recorder.reports[-1] == (100.0, Stage.ENCODING, 0.0)


def tqdm_output(chunks: int, steps: int, frames: int) -> str:
    """What upstream writes to stderr: one sampling bar per chunk, then the saving bar."""
    stream = io.StringIO()
    for _ in range(chunks):
        for _ in tqdm(range(steps), total=steps, file=stream, mininterval=0):
            pass
    for _ in tqdm(range(frames), desc="Saving video", file=stream, mininterval=0):
        pass
    return stream.getvalue()


def test_parser_counts_chunks_from_real_tqdm_bars() -> None:
    job, recorder, _ = progress(chunks=3, steps=5, frames=20)
    parser = TqdmParser(job, steps=5)
    text = "[2025-01-01] INFO: Generating video ...\n" + tqdm_output(3, 5, 20)
    for start in range(0, len(text), 7):  # arbitrary pipe reads split lines and bars
        parser.feed(text[start : start + 7])
    parser.feed("\n")
    sampling = [r for r in recorder.reports if r[1] is Stage.GENERATING]
    encoding = [r for r in recorder.reports if r[1] is Stage.ENCODING]
    assert sampling[0][0] == SAMPLING_START
    assert sampling[-1][0] == pytest.approx(SAMPLING_END)
    assert len(sampling) == 3 * 7  # 0..5 of each bar, then its final redraw on close
    assert encoding[-1][0] == pytest.approx(99.0)
    assert recorder.percents == sorted(recorder.percents)


def test_parser_ignores_other_bars_and_noise() -> None:
    job, recorder, _ = progress(chunks=1, steps=40)
    parser = TqdmParser(job, steps=40)
    parser.feed("Loading checkpoint shards: 100%|██████████| 3/3 [00:01<00:00]\n")
    parser.feed(" 50%|█████     | 10/20 [00:01<00:01, 9.9it/s]\rsome log line\n")
    assert recorder.reports == []
