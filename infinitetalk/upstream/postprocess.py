"""From upstream's frames to the output contract (`infinitetalk.media.output`).

Upstream muxes a 16 kHz, loudness-normalised copy of the audio and writes no faststart
index. `finalize` keeps upstream's H.264 stream as it is (no second lossy pass) and
stream-copies the job's original audio, encoded as AAC by the audio's one pass, with
`+faststart`; only when the video must be trimmed (padded short audio) or is not H.264
yuv420p is it re-encoded. The result is verified: codec, 25 fps, size, and duration
within one frame of the audio.
"""

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import av
import numpy as np

from contracts import FailureCode
from infinitetalk.engine import EngineError, InvalidInputError
from infinitetalk.media.mux import MP4_OPTIONS, AudioFeed, add_h264_stream
from infinitetalk.media.output import FRAME_SECONDS, OUTPUT_FPS, verify_output
from infinitetalk.media.probe import VideoInfo, probe_video
from infinitetalk.upstream.prepare import JobPlan

X264_OPTIONS = {"preset": "veryfast", "crf": "18"}
"""Upstream's frames are the product: encode them close to visually lossless."""
ENCODE_REPORT_EVERY = 25


class FrameTensor(Protocol):
    """Upstream's video: (channels, frames, height, width) in [-1, 1], on the CPU.

    A torch tensor in production; anything indexable the same way in tests.
    """

    shape: tuple[int, ...]

    def __getitem__(self, index: tuple[slice, int]) -> object: ...


def write_frames(
    video: FrameTensor, output: Path, on_frames: Callable[[int, int], None]
) -> tuple[int, int, int]:
    """Encode upstream's frames as a video-only H.264 MP4; returns (frames, width, height)."""
    _, total, height, width = video.shape
    with av.open(str(output), "w", format="mp4") as container:
        stream = add_h264_stream(container, (width, height), X264_OPTIONS)
        for index in range(total):
            pixels = np.asarray(video[:, index], dtype=np.float32)
            rgb = np.clip((pixels + 1.0) * 127.5, 0, 255).astype(np.uint8).transpose(1, 2, 0)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
            if (index + 1) % ENCODE_REPORT_EVERY == 0 or index + 1 == total:
                on_frames(index + 1, total)
        container.mux(stream.encode(None))
    return total, width, height


def finalize(raw: Path, plan: JobPlan, output: Path) -> VideoInfo:
    """Write `output` from upstream's `raw` video and the job's audio, then verify it."""
    try:
        source = probe_video(raw)
    except InvalidInputError as exc:
        raise _failed(f"upstream's video is unreadable: {exc.message}") from exc
    if abs(source.fps - OUTPUT_FPS) > 1e-3:
        raise _failed(f"upstream's video runs at {source.fps:g} fps, not {OUTPUT_FPS}")
    covers = abs(source.frame_count / OUTPUT_FPS - plan.audio_seconds) <= FRAME_SECONDS + 1e-6
    if not covers and source.frame_count < plan.target_frames:
        raise _failed(
            f"upstream made {source.frame_count} frames for {plan.audio_seconds:.2f} s of audio"
        )
    reencode = not covers or (source.video_codec, source.pix_fmt) != ("h264", "yuv420p")
    aac_path = plan.audio.aac_path
    try:
        with (
            av.open(str(raw)) as source_file,
            av.open(str(output), "w", format="mp4", options=MP4_OPTIONS) as container,
        ):
            container.metadata["comment"] = "InfiniteTalk (MeiGen-AI) via infinite-avatar"
            if reencode:
                _reencode(source_file, container, aac_path, plan.target_frames)
            else:
                _copy(source_file, container, aac_path)
        info = probe_video(output)
    except (av.FFmpegError, InvalidInputError) as exc:
        output.unlink(missing_ok=True)
        raise _failed(f"could not write the final video: {exc}") from exc
    try:
        verify_output(info, plan.audio_seconds, plan.size)
    except EngineError:
        output.unlink(missing_ok=True)
        raise
    return info


def _copy(
    source: av.container.InputContainer, container: av.container.OutputContainer, aac_path: Path
) -> None:
    """Stream-copy the H.264 packets, interleaving the job's AAC audio by time."""
    video_in = source.streams.video[0]
    video_out = container.add_stream_from_template(video_in)
    feed = AudioFeed(container, aac_path)
    try:
        for packet in source.demux(video_in):
            if packet.dts is None:
                continue
            feed.mux_until(float(packet.dts * packet.time_base))
            packet.stream = video_out
            container.mux(packet)
        feed.finish()
    finally:
        feed.close()


def _reencode(
    source: av.container.InputContainer,
    container: av.container.OutputContainer,
    aac_path: Path,
    frames: int,
) -> None:
    """Decode, keep the first `frames` frames, encode them again (trims padded audio's video)."""
    video_in = source.streams.video[0]
    size = (video_in.codec_context.width, video_in.codec_context.height)
    video_out = add_h264_stream(container, size, X264_OPTIONS)
    feed = AudioFeed(container, aac_path)
    try:
        for index, decoded in enumerate(source.decode(video_in)):
            if index >= frames:
                break
            frame = decoded.reformat(format="yuv420p")
            frame.pts = index
            frame.time_base = Fraction(1, OUTPUT_FPS)
            container.mux(video_out.encode(frame))
            feed.mux_until((index + 1) / OUTPUT_FPS)
        feed.finish()
    finally:
        feed.close()
    container.mux(video_out.encode(None))


def _failed(message: str) -> EngineError:
    return EngineError(FailureCode.GENERATION_FAILED.value, message, retryable=True)
