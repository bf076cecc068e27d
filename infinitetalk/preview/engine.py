"""The CPU preview engine: a real MP4 with audio-driven motion and no model.

It exists so the whole system runs and is testable without a GPU. The lower face stretches
open with the loudness of each 40 ms of audio and the head bobs gently; every frame carries
a "PREVIEW" label and the file's metadata says so, so it is never mistaken for
InfiniteTalk output. The prompt is ignored; the seed only shifts the head-bob phase.

Dubbing moves the source video's frames instead of a still, on the output's 25 fps clock:
the output follows the audio, holding the video's last frame when the audio is longer and
cutting the video when it is shorter. Two speakers move two faces, each in its box and by
its own track's loudness (one after the other, or at the same time).
"""

import math
import time
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np

from contracts import Capability, FailureCode, Quality, Stage
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
from infinitetalk.media.faces import detector_available
from infinitetalk.media.mux import MP4_OPTIONS, AudioFeed, add_h264_stream
from infinitetalk.media.output import OUTPUT_FPS, output_size, verify_output, video_result
from infinitetalk.media.probe import probe_image, probe_video
from infinitetalk.media.video_input import frames_at_output_rate
from infinitetalk.preview.face import (
    FACE_HALF_HEIGHT,
    FaceRegion,
    FaceRig,
    base_frame,
    labelled_frame,
)
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

    def capabilities(self) -> frozenset[Capability]:
        """Images and videos; two speakers where the face detector is installed."""
        made = {Capability.IMAGE, Capability.VIDEO}
        if detector_available():
            made.add(Capability.TWO_SPEAKERS)
        return frozenset(made)

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
        picture = (image.width, image.height)
        if request.speakers is None:
            regions = [FaceRegion.centred(size)]
            tracks = [audio.loudness_path]
        else:
            boxes = request.speakers.assignment.boxes
            regions = [FaceRegion.of_box(box, picture, size) for box in boxes]
            tracks = list(request.speakers.loudness_paths)
        layout_half_height = FACE_HALF_HEIGHT * min(size)
        motions = [
            Motion.from_loudness(read_loudness(path), frame_count, size, request.seed).scaled(
                region.half_height / layout_half_height
            )
            for region, path in zip(regions, tracks, strict=True)
        ]
        rig = FaceRig(base_frame(request.image_path, size), size, regions)
        frames = (
            None
            if request.video_path is None
            else (
                labelled_frame(f, size)
                for f in frames_at_output_rate(request.video_path, frame_count)
            )
        )

        output = workdir / OUTPUT_NAME
        try:
            _write_mp4(output, rig, motions, frames, audio.aac_path, progress, cancelled)
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
    motions: list[Motion],
    frames: Iterator[np.ndarray] | None,
    aac_path: Path,
    progress: "_Progress",
    cancelled: CancelCheck,
) -> None:
    """Write video frames and the job's AAC audio, interleaved, as a faststart MP4; each
    face moves by its own motion, over the still or over each of `frames` in turn."""
    total = motions[0].frame_count
    with av.open(str(output), "w", format="mp4", options=MP4_OPTIONS) as container:
        container.metadata["comment"] = "avatar preview engine: not InfiniteTalk output"
        video = add_h264_stream(container, rig.size, X264_OPTIONS)
        feed = AudioFeed(container, aac_path)
        try:
            started = time.monotonic()
            for index in range(total):
                if index % CANCEL_POLL_FRAMES == 0 and cancelled():
                    raise CancelledError()
                if frames is not None:
                    rig.rebase(next(frames))
                moves = [(float(m.bob[index]), float(m.jaw[index])) for m in motions]
                frame = av.VideoFrame.from_ndarray(rig.render(moves), format="yuv420p")
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
