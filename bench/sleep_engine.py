"""An engine whose cost is a fixed sleep per upstream chunk: scaling measurements only.

Upstream InfiniteTalk generates 81 frames per chunk, each later chunk reusing the last 9
frames of the one before as context (`infinitetalk.upstream.pinned.chunk_count`), so a job's
GPU time is about proportional to its chunks. This engine sleeps `seconds_per_chunk` per
chunk, then writes a tiny real MP4 (64x64, the job's audio, the output contract's frame
count), so `bench/fanout.py` measures the fan-out's scaling, not this machine's CPUs.

It is not an `EngineName` and `infinitetalk.factory.create_engine` does not know it, so
neither a client (who never picks engines) nor an agent's `ENGINE` setting can select it:
only code that constructs it and hands it to `gpu_agent.cli.run_agent(engine=...)` runs
it, which is what the bench and the tests do.
"""

import time
from pathlib import Path

import av
import numpy as np

from contracts import Quality, Stage
from infinitetalk.engine import (
    CancelCheck,
    CancelledError,
    ProgressCallback,
    VideoRequest,
    VideoResult,
)
from infinitetalk.media.audio_pass import prepare_audio
from infinitetalk.media.mux import MP4_OPTIONS, AudioFeed, add_h264_stream
from infinitetalk.media.output import OUTPUT_FPS, verify_output, video_result
from infinitetalk.media.probe import probe_video
from infinitetalk.upstream import pinned

SIZE = (64, 64)
X264_OPTIONS = {"preset": "ultrafast", "crf": "30"}
CANCEL_POLL_SECONDS = 0.05


class SleepEngine:
    """Sleeps per chunk, then writes a small, valid video of the right length."""

    name = "sleep"

    def __init__(self, seconds_per_chunk: float) -> None:
        self.seconds_per_chunk = seconds_per_chunk

    def quality_unavailable(self, quality: Quality) -> None:
        return None

    def generate(
        self,
        request: VideoRequest,
        workdir: Path,
        on_progress: ProgressCallback,
        cancelled: CancelCheck,
    ) -> VideoResult:
        workdir.mkdir(parents=True, exist_ok=True)
        audio = request.audio or prepare_audio(request.audio_path, workdir / "audio")
        seconds = audio.info.duration_seconds
        frames = max(1, round(seconds * OUTPUT_FPS))
        chunks = pinned.chunk_count(frames)
        for chunk in range(chunks):
            on_progress(90.0 * chunk / chunks, Stage.GENERATING, None)
            waited = 0.0
            while waited < self.seconds_per_chunk:
                if cancelled():
                    raise CancelledError()
                step = min(CANCEL_POLL_SECONDS, self.seconds_per_chunk - waited)
                time.sleep(step)
                waited += step
        on_progress(90.0, Stage.ENCODING, None)
        output = workdir / "sleep.mp4"
        _write(output, frames, audio.aac_path)
        info = probe_video(output)
        verify_output(info, seconds, SIZE)
        on_progress(100.0, Stage.ENCODING, 0.0)
        return video_result(output, info, self.name)


def _write(output: Path, frames: int, aac_path: Path) -> None:
    """Grey frames whose level steps with the frame index, so every frame differs."""
    with av.open(str(output), "w", format="mp4", options=MP4_OPTIONS) as container:
        video = add_h264_stream(container, SIZE, X264_OPTIONS)
        feed = AudioFeed(container, aac_path)
        try:
            plane = np.empty((SIZE[1], SIZE[0], 3), dtype=np.uint8)
            for index in range(frames):
                plane.fill(16 + index % 220)
                frame = av.VideoFrame.from_ndarray(plane, format="rgb24")
                frame.pts = index
                container.mux(video.encode(frame))
                feed.mux_until((index + 1) / OUTPUT_FPS)
            feed.finish()
        finally:
            feed.close()
        container.mux(video.encode(None))
