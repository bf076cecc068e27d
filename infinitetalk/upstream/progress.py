"""Honest progress for an InfiniteTalk job: sampling steps across chunks, then encoding.

Upstream samples the video in N chunks of `steps` denoising steps each (one tqdm bar per
chunk, N = 1 + ceil((frames - 81) / 72)), then writes the frames. The engine's percent is

    0-2 %    preparing (audio embedding; in subprocess mode also the model load)
    2-92 %   sampling:  (finished chunks x steps + step) / (N x steps)
    92-99 %  encoding:  frames written / frames
    100 %    remuxed and verified

never going back, with an ETA from the measured step and frame rates. Resident mode feeds
it from a tqdm hook inside the model worker; subprocess mode from upstream's tqdm bars,
parsed off its stderr by `TqdmParser`.
"""

import re
import threading
import time
from collections.abc import Callable

from contracts import Stage
from infinitetalk.engine import ProgressCallback

SAMPLING_START = 2.0
SAMPLING_END = 92.0
ENCODING_END = 99.0
ENCODE_FPS_ESTIMATE = 40.0
"""Frames per second the encode is assumed to run at until it is measured."""
SAVING_BAR = "Saving video"
"""The description of the frame-writing bar in upstream's `save_video_ffmpeg`."""


class JobProgress:
    """Turns chunk/step and frame counts into the engine's percent, stage and ETA."""

    def __init__(
        self,
        on_progress: ProgressCallback,
        *,
        chunks: int,
        steps: int,
        frames: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._on_progress = on_progress
        self._chunks = max(1, chunks)
        self._steps = max(1, steps)
        self._frames = max(1, frames)
        self._clock = clock
        self._lock = threading.Lock()
        self._percent = 0.0
        self._sampling_origin: tuple[float, int] | None = None
        self._step_seconds: float | None = None
        self._encoding_origin: tuple[float, int] | None = None

    def preparing(self) -> None:
        self._report(0.0, Stage.GENERATING, None)

    def step(self, chunk: int, done: int) -> None:
        """`done` steps of chunk `chunk` (0-based) have finished."""
        with self._lock:
            if chunk >= self._chunks:  # upstream covered more audio than planned
                self._chunks = chunk + 1
            steps_done = chunk * self._steps + min(max(done, 0), self._steps)
            total = self._chunks * self._steps
            now = self._clock()
            if self._sampling_origin is None:
                self._sampling_origin = (now, steps_done)
            origin_time, origin_steps = self._sampling_origin
            if steps_done > origin_steps:
                self._step_seconds = (now - origin_time) / (steps_done - origin_steps)
            eta = None
            if self._step_seconds is not None:
                encode = self._frames / ENCODE_FPS_ESTIMATE
                eta = (total - steps_done) * self._step_seconds + encode
            span = SAMPLING_END - SAMPLING_START
            percent = SAMPLING_START + span * steps_done / total
        self._report(percent, Stage.GENERATING, eta)

    def encoding(self, done: int, total: int) -> None:
        """`done` of `total` frames have been written."""
        with self._lock:
            total = max(1, total)
            done = min(max(done, 0), total)
            now = self._clock()
            if self._encoding_origin is None:
                self._encoding_origin = (now, done)
            origin_time, origin_done = self._encoding_origin
            per_frame = 1 / ENCODE_FPS_ESTIMATE
            if done > origin_done:
                per_frame = (now - origin_time) / (done - origin_done)
            eta = (total - done) * per_frame
            percent = SAMPLING_END + (ENCODING_END - SAMPLING_END) * done / total
        self._report(percent, Stage.ENCODING, eta)

    def finished(self) -> None:
        self._report(100.0, Stage.ENCODING, 0.0)

    def _report(self, percent: float, stage: Stage, eta: float | None) -> None:
        with self._lock:
            self._percent = max(self._percent, percent)
            current = self._percent
        self._on_progress(current, stage, eta)


_BAR = re.compile(
    r"(?:(?P<desc>[^\r\n|]*?):\s*)?\d+%\|[^|\r\n]*\|\s*(?P<n>\d+)/(?P<total>\d+)(?:\s|\[|$)"
)


class TqdmParser:
    """Reads upstream's stderr as it arrives and reports each tqdm redraw.

    A sampling bar has `steps` as its total; a new one starts when the count drops (the
    previous chunk's bar ended at steps/steps). The frame-writing bar is SAVING_BAR.
    """

    def __init__(self, progress: JobProgress, steps: int) -> None:
        self._progress = progress
        self._steps = steps
        self._chunk = 0
        self._last = 0
        self._partial = ""

    def feed(self, text: str) -> None:
        """Take any slice of the stream; tqdm redraws with carriage returns, lines with \\n."""
        segments = re.split(r"[\r\n]", self._partial + text)
        self._partial = segments.pop()
        for segment in segments:
            self._segment(segment)

    def _segment(self, segment: str) -> None:
        match = _BAR.search(segment)
        if match is None:
            return
        done, total = int(match["n"]), int(match["total"])
        if SAVING_BAR in (match["desc"] or ""):
            self._progress.encoding(done, total)
        elif total == self._steps and not match["desc"]:
            if done < self._last:
                self._chunk += 1
            self._last = done
            self._progress.step(self._chunk, done)
