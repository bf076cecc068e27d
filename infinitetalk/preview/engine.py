"""The CPU preview engine: a real MP4 with audio-driven motion and no model.

It exists so the whole system runs and is testable without a GPU. The lower face stretches
open with the loudness of each 40 ms of audio and the head bobs gently; every frame carries
a "PREVIEW" label and the file's metadata says so, so it is never mistaken for
InfiniteTalk output. The prompt is ignored; the seed only shifts the head-bob phase.
"""

import math
import time
from pathlib import Path

import av

from contracts import FailureCode, Quality, Stage
from infinitetalk.engine import (
    CancelCheck,
    CancelledError,
    EngineError,
    InvalidInputError,
    ProgressCallback,
    VideoRequest,
    VideoResult,
)
from infinitetalk.media.audio_pass import prepare_audio, read_loudness
from infinitetalk.media.mux import MP4_OPTIONS, AudioFeed, add_h264_stream
from infinitetalk.media.output import OUTPUT_FPS, output_size, verify_output, video_result
from infinitetalk.media.probe import probe_image, probe_video
from infinitetalk.preview.face import FaceRig, base_frame
from infinitetalk.preview.motion import Motion

OUTPUT_NAME = "preview.mp4"
AUDIO_DIR = "audio"
"""Where the engine makes the audio's one pass when the request brings none."""
GENERATING_SHARE = 90.0
"""Percent of the progress bar spent rendering frames; the rest is finishing the file."""
PROGRESS_INTERVAL_S = 0.25
CANCEL_POLL_FRAMES = 5
X264_OPTIONS = {"preset": "veryfast", "crf": "23"}


class PreviewEngine:
    """Animates the portrait on the CPU; fast enough for minutes of audio at 720p."""

    name = "preview"

    def quality_unavailable(self, quality: Quality) -> None:
        """Both: the preview renders the same way at any quality."""
        return None

    def generate(
        self,
        request: VideoRequest,
        workdir: Path,
        on_progress: ProgressCallback,
        cancelled: CancelCheck,
    ) -> VideoResult:
        """Render, mux the original audio, then check the file against the output contract."""
        image = probe_image(request.image_path)
        workdir.mkdir(parents=True, exist_ok=True)
        audio = request.audio or prepare_audio(request.audio_path, workdir / AUDIO_DIR)
        progress = _Progress(on_progress)
        progress.report(0.0, Stage.GENERATING, None)
        if cancelled():
            raise CancelledError()

        size = output_size(image.width, image.height, request.resolution)
        seconds = audio.info.duration_seconds
        frame_count = max(1, round(seconds * OUTPUT_FPS))
        loudness = read_loudness(audio.loudness_path)
        motion = Motion.from_loudness(loudness, frame_count, size, request.seed)
        rig = FaceRig(base_frame(request.image_path, size), size)

        output = workdir / OUTPUT_NAME
        try:
            _write_mp4(output, rig, motion, audio.aac_path, progress, cancelled)
            info = probe_video(output)
            verify_output(info, seconds, size)
        except InvalidInputError as exc:
            output.unlink(missing_ok=True)
            raise EngineError(
                FailureCode.GENERATION_FAILED.value, f"preview output is unreadable: {exc}"
            ) from exc
        except BaseException:
            output.unlink(missing_ok=True)
            raise
        progress.report(100.0, Stage.ENCODING, 0.0)
        return video_result(output, info, self.name)


def _write_mp4(
    output: Path,
    rig: FaceRig,
    motion: Motion,
    aac_path: Path,
    progress: "_Progress",
    cancelled: CancelCheck,
) -> None:
    """Write video frames and the job's AAC audio, interleaved, as a faststart MP4."""
    total = motion.frame_count
    with av.open(str(output), "w", format="mp4", options=MP4_OPTIONS) as container:
        container.metadata["comment"] = "avatar preview engine: not InfiniteTalk output"
        video = add_h264_stream(container, rig.size, X264_OPTIONS)
        feed = AudioFeed(container, aac_path)
        try:
            started = time.monotonic()
            for index in range(total):
                if index % CANCEL_POLL_FRAMES == 0 and cancelled():
                    raise CancelledError()
                frame = av.VideoFrame.from_ndarray(
                    rig.render(motion.bob[index], motion.jaw[index]), format="yuv420p"
                )
                frame.pts = index
                container.mux(video.encode(frame))
                feed.mux_until((index + 1) / OUTPUT_FPS)
                progress.frames(index + 1, total, time.monotonic() - started)
            progress.report(GENERATING_SHARE, Stage.ENCODING, progress.tail_eta)
            feed.finish()
        finally:
            feed.close()
        container.mux(video.encode(None))


class _Progress:
    """Forwards progress at most every PROGRESS_INTERVAL_S, never letting percent go down."""

    def __init__(self, on_progress: ProgressCallback) -> None:
        self.on_progress = on_progress
        self.percent = 0.0
        self.last_report = -math.inf
        self.tail_eta: float | None = None

    def report(self, percent: float, stage: Stage, eta: float | None) -> None:
        self.percent = max(self.percent, percent)
        self.last_report = time.monotonic()
        self.on_progress(self.percent, stage, eta)

    def frames(self, done: int, total: int, elapsed: float) -> None:
        """ETA from the measured frame rate; finishing the file costs about 5% more."""
        per_frame = elapsed / done
        self.tail_eta = 0.05 * total * per_frame
        if time.monotonic() - self.last_report < PROGRESS_INTERVAL_S:
            return
        eta = (total - done) * per_frame + self.tail_eta
        self.report(GENERATING_SHARE * done / total, Stage.GENERATING, eta)
