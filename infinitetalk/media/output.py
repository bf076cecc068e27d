"""The output contract every engine's video meets (docs/API.md): size, codecs, 25 fps, sync.

An output that breaks it raises `EngineError("GENERATION_FAILED")`, naming every broken
property, so a bad video is never published.
"""

from pathlib import Path

from contracts import FailureCode, Resolution
from infinitetalk.engine import EngineError, VideoResult
from infinitetalk.media.probe import VideoInfo

OUTPUT_FPS = 25
FRAME_SECONDS = 1.0 / OUTPUT_FPS
_DURATION_TOLERANCE = FRAME_SECONDS + 1e-6


def output_size(width: int, height: int, resolution: Resolution) -> tuple[int, int]:
    """Scale so the short side is the resolution's, keep the aspect, make both sides even."""
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    short_side = resolution.short_side
    scale = short_side / min(width, height)
    if width <= height:
        return short_side, _round_even(height * scale)
    return _round_even(width * scale), short_side


def verify_output(video: VideoInfo, audio_duration: float, expected_size: tuple[int, int]) -> None:
    """Refuse an output that breaks the output contract, naming every broken property."""
    problems = []
    if video.video_codec != "h264":
        problems.append(f"video codec is {video.video_codec}, not h264")
    if video.pix_fmt != "yuv420p":
        problems.append(f"pixel format is {video.pix_fmt}, not yuv420p")
    if abs(video.fps - OUTPUT_FPS) > 1e-3:
        problems.append(f"frame rate is {video.fps:g}, not {OUTPUT_FPS}")
    if (video.width, video.height) != tuple(expected_size):
        expected = f"{expected_size[0]}x{expected_size[1]}"
        problems.append(f"size is {video.width}x{video.height}, not {expected}")
    if video.audio_codec != "aac":
        problems.append(f"audio codec is {video.audio_codec}, not aac")
    if not video.faststart:
        problems.append("moov atom is not before mdat (no faststart)")
    if abs(video.duration_seconds - audio_duration) > _DURATION_TOLERANCE:
        problems.append(
            f"video lasts {video.duration_seconds:.3f} s but the audio {audio_duration:.3f} s"
        )
    muxed = video.audio_duration_seconds
    if video.audio_codec is not None and (
        muxed is None or abs(muxed - audio_duration) > _DURATION_TOLERANCE
    ):
        problems.append(f"muxed audio lasts {muxed} s, the source {audio_duration:.3f} s")
    if problems:
        raise EngineError(
            FailureCode.GENERATION_FAILED.value, "output check failed: " + "; ".join(problems)
        )


def video_result(path: Path, info: VideoInfo, engine: str) -> VideoResult:
    """What the agent reports for a verified output: the measured, not the planned, video."""
    return VideoResult(
        path=path,
        duration_seconds=info.duration_seconds,
        width=info.width,
        height=info.height,
        engine=engine,
    )


def _round_even(value: float) -> int:
    return max(2, round(value / 2) * 2)
