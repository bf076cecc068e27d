"""One video from a parallel job's segments, checked at every seam before it is published.

Each segment was generated from its own slice of the audio, a whole number of frames long
(`segment_audio`), so the segments' frames laid end to end are the whole video. Without a
crossfade the H.264 packets are stream-copied with their timestamps shifted (no second
lossy pass, seconds for an hour of video); a crossfade, or segments whose encoder setup
differs, means decoding and encoding the frames once. The job's original audio, encoded
as AAC by the audio pass, is muxed once over the whole video, with faststart.

The result must pass, or `StitchError` names what failed:
- the output contract (`output.verify_output`) and exactly `round(audio_seconds x 25)`
  frames;
- every frame timestamp 0 .. N-1 exactly once (nothing duplicated or missing, at a seam
  or anywhere else) and the audio without gaps;
- each seam at its planned time within one frame, so the picture stays in sync with the
  one continuous audio track.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from contracts import FailureCode
from infinitetalk.engine import EngineError, InvalidInputError
from infinitetalk.media.mux import MP4_OPTIONS, AudioFeed, add_h264_stream
from infinitetalk.media.output import FRAME_SECONDS, OUTPUT_FPS, verify_output
from infinitetalk.media.probe import VideoInfo, probe_video

X264_OPTIONS = {"preset": "veryfast", "crf": "18"}
"""Only when re-encoding: the segments are the product, keep them close to lossless."""
_FRAME = Fraction(1, OUTPUT_FPS)


class StitchError(EngineError):
    """The segments cannot make a correct video, or the result failed a check."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(FailureCode.GENERATION_FAILED.value, message, retryable=retryable)


@dataclass(frozen=True)
class Seam:
    """Where segment `index` ends and the next begins."""

    index: int
    planned_seconds: float
    frame: int
    """The first frame of the next segment in the output."""

    @property
    def offset_seconds(self) -> float:
        """How far the picture's seam is from the planned audio time."""
        return self.frame / OUTPUT_FPS - self.planned_seconds


@dataclass(frozen=True)
class Stitched:
    info: VideoInfo
    seams: list[Seam]
    copied: bool
    """True when the packets were stream-copied, False when re-encoded."""


def planned_frames(spans: Sequence[tuple[float, float]]) -> list[int]:
    """The frames each segment must have: its share of `round(seconds x 25)`."""
    return [round(end * OUTPUT_FPS) - round(start * OUTPUT_FPS) for start, end in spans]


def stitch(
    segments: Sequence[Path],
    spans: Sequence[tuple[float, float]],
    aac_path: Path,
    audio_seconds: float,
    output: Path,
    *,
    crossfade_frames: int = 0,
) -> Stitched:
    """Write `output` from the segment MP4s (in order) and the job's AAC, then check it."""
    if len(segments) != len(spans) or not segments:
        raise StitchError(
            f"{len(segments)} segment videos for {len(spans)} planned segments", retryable=False
        )
    infos = [_probe_segment(index, path) for index, path in enumerate(segments)]
    expected = planned_frames(spans)
    _check_segments(infos, expected, spans)
    size = (infos[0].width, infos[0].height)
    copied = crossfade_frames == 0 and _copyable(segments)
    try:
        with av.open(str(output), "w", format="mp4", options=MP4_OPTIONS) as container:
            container.metadata["comment"] = "stitched from parallel segments by infinite-avatar"
            feed = AudioFeed(container, aac_path)
            try:
                if copied:
                    _copy(segments, expected, container, feed)
                else:
                    _reencode(segments, expected, size, crossfade_frames, container, feed)
                feed.finish()
            finally:
                feed.close()
        info = probe_video(output)
    except (av.FFmpegError, InvalidInputError) as exc:
        output.unlink(missing_ok=True)
        raise StitchError(f"could not write the stitched video: {exc}", retryable=True) from exc
    seams = [
        Seam(index, spans[index][1], sum(expected[: index + 1])) for index in range(len(spans) - 1)
    ]
    try:
        _check_output(output, info, audio_seconds, size, seams)
    except StitchError:
        output.unlink(missing_ok=True)
        raise
    return Stitched(info, seams, copied)


def _probe_segment(index: int, path: Path) -> VideoInfo:
    try:
        return probe_video(path)
    except InvalidInputError as exc:
        raise StitchError(f"segment {index} is unreadable: {exc.message}", retryable=True) from exc


def _check_segments(
    infos: Sequence[VideoInfo], expected: Sequence[int], spans: Sequence[tuple[float, float]]
) -> None:
    problems = []
    first = infos[0]
    for index, (info, frames) in enumerate(zip(infos, expected, strict=True)):
        start, end = spans[index]
        if info.frame_count != frames:
            problems.append(
                f"segment {index} ({start:.2f}-{end:.2f} s) has {info.frame_count} frames, "
                f"not {frames}"
            )
        if (info.width, info.height) != (first.width, first.height):
            problems.append(
                f"segment {index} is {info.width}x{info.height}, "
                f"segment 0 {first.width}x{first.height}"
            )
        if info.video_codec != "h264" or abs(info.fps - OUTPUT_FPS) > 1e-3:
            problems.append(f"segment {index} is {info.video_codec} at {info.fps:g} fps")
    if problems:
        raise StitchError("segments do not fit together: " + "; ".join(problems), retryable=False)


def _copyable(segments: Sequence[Path]) -> bool:
    """Stream copy needs one encoder setup (SPS/PPS) and one B-frame delay everywhere."""
    setups = set()
    for path in segments:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            first = next(p for p in container.demux(stream) if p.dts is not None)
            delay = (first.pts or 0) - (first.dts or 0)
            setups.add(
                (bytes(stream.codec_context.extradata or b""), delay * (stream.time_base or 0))
            )
    return len(setups) == 1


def _copy(
    segments: Sequence[Path],
    expected: Sequence[int],
    container: av.container.OutputContainer,
    feed: AudioFeed,
) -> None:
    """Each segment's packets, shifted by the frames before it."""
    video_out: av.video.stream.VideoStream | None = None
    start_frame = 0
    for path, frames in zip(segments, expected, strict=True):
        with av.open(str(path)) as source:
            video_in = source.streams.video[0]
            if video_out is None:
                video_out = container.add_stream_from_template(video_in)
            shift = _ticks(start_frame * _FRAME, video_in.time_base)
            for packet in source.demux(video_in):
                if packet.dts is None:
                    continue
                packet.pts = (packet.pts if packet.pts is not None else packet.dts) + shift
                packet.dts += shift
                feed.mux_until(float(packet.dts * packet.time_base))
                packet.stream = video_out
                container.mux(packet)
        start_frame += frames


def _reencode(
    segments: Sequence[Path],
    expected: Sequence[int],
    size: tuple[int, int],
    crossfade_frames: int,
    container: av.container.OutputContainer,
    feed: AudioFeed,
) -> None:
    """Decode every frame once, blend `crossfade_frames` around each seam, encode."""
    video = add_h264_stream(container, size, X264_OPTIONS)
    seams = np.cumsum(expected)[:-1].tolist()
    frames = _blended(_decoded(segments), seams, crossfade_frames)
    for index, pixels in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
        frame.pts = index
        container.mux(video.encode(frame))
        feed.mux_until((index + 1) / OUTPUT_FPS)
    container.mux(video.encode(None))


def _decoded(segments: Sequence[Path]) -> Iterator[np.ndarray]:
    for path in segments:
        with av.open(str(path)) as source:
            for frame in source.decode(source.streams.video[0]):
                yield frame.to_ndarray(format="rgb24")


def _blended(frames: Iterator[np.ndarray], seams: list[int], width: int) -> Iterator[np.ndarray]:
    """The frames, with the `width` frames around each seam a mix of both sides.

    No frame is added or dropped, so sync holds: before the seam the next segment's first
    frame fades in, after it the previous segment's last frame fades out. At most `width`
    frames are held at a time.
    """
    before, after = (width + 1) // 2, width // 2
    windows = iter([(seam - before, seam, seam + after) for seam in seams] if width else [])
    window = next(windows, None)
    held: list[np.ndarray] = []
    left = np.zeros(0)
    for index, frame in enumerate(frames):
        while window is not None and index >= window[2]:
            window = next(windows, None)
        if window is None or index < window[0]:
            yield frame
            continue
        low, seam, _ = window
        if index < seam:
            held.append(frame)
            continue
        if index == seam:
            left = held[-1]
            for offset, own in enumerate(held):
                yield _mix(own, frame, (offset + 0.5) / width)
            held = []
        yield _mix(left, frame, (index - low + 0.5) / width)


def _mix(first: np.ndarray, second: np.ndarray, weight: float) -> np.ndarray:
    mixed = first.astype(np.float32) * (1 - weight) + second.astype(np.float32) * weight
    return np.clip(np.round(mixed), 0, 255).astype(np.uint8)


def _ticks(seconds: Fraction, time_base: Fraction | None) -> int:
    ticks = seconds / (time_base or _FRAME)
    if ticks.denominator != 1:
        raise StitchError(f"time base {time_base} cannot hold whole frames", retryable=False)
    return int(ticks)


def _check_output(
    output: Path, info: VideoInfo, audio_seconds: float, size: tuple[int, int], seams: list[Seam]
) -> None:
    try:
        verify_output(info, audio_seconds, size)
    except EngineError as exc:
        raise StitchError(f"stitched video: {exc.message}", retryable=True) from exc
    total = round(audio_seconds * OUTPUT_FPS)
    problems = []
    if info.frame_count != total:
        problems.append(f"{info.frame_count} frames, not round({audio_seconds:.3f} x 25) = {total}")
    frames, audio_gaps = _timeline(output)
    counts = np.bincount(
        np.asarray([f for f in frames if 0 <= f < total], dtype=np.int64), minlength=total
    )
    outside = [f for f in frames if not 0 <= f < total]
    if outside:
        problems.append(f"frames at {outside[:5]} lie outside 0..{total - 1}")
    for seam in seams:
        around = counts[max(0, seam.frame - 1) : seam.frame + 1].tolist()
        if around != [1, 1]:
            problems.append(
                f"seam {seam.index} at frame {seam.frame}: the frames on its sides appear "
                f"{around} times"
            )
        if abs(seam.offset_seconds) > FRAME_SECONDS + 1e-6:
            problems.append(
                f"seam {seam.index} is at {seam.frame / OUTPUT_FPS:.3f} s, "
                f"planned {seam.planned_seconds:.3f} s"
            )
    duplicated = np.flatnonzero(counts > 1)
    missing = np.flatnonzero(counts == 0)
    if duplicated.size:
        problems.append(f"frames {duplicated[:5].tolist()} are duplicated")
    if missing.size:
        problems.append(f"frames {missing[:5].tolist()} are missing")
    if audio_gaps:
        problems.append(f"the audio has {audio_gaps} gap(s)")
    if problems:
        raise StitchError(
            "stitched video failed its checks: " + "; ".join(problems), retryable=True
        )


def _timeline(output: Path) -> tuple[list[int], int]:
    """Every video frame's timestamp in frames, and the gaps between audio packets."""
    frames: list[int] = []
    gaps = 0
    with av.open(str(output)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0]
        expected_audio: int | None = None
        for packet in container.demux(video, audio):
            if packet.pts is None or not packet.size:
                continue
            if packet.stream is video:
                frames.append(round(packet.pts * packet.time_base * OUTPUT_FPS))
                continue
            if expected_audio is not None and packet.pts != expected_audio:
                gaps += 1
            expected_audio = packet.pts + (packet.duration or 0)
    return frames, gaps
