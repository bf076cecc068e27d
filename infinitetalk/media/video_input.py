"""A video to dub: checked by decoding its first frame, and read back at 25 fps.

The edge only sniffs the container (it cannot decode); here the first frame must decode,
its size must fit the pixel limit and the decoded length the time limit. Its frames are
then read on the output's 25 fps clock: the frame shown at each output time, holding the
last one when the audio outlasts the video (upstream's `extract_specific_frames` does the
same past the end); a longer video is cut where the audio ends.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
from PIL import Image

from contracts import FailureCode
from contracts.media import MAX_IMAGE_PIXELS, MAX_VIDEO_SECONDS
from infinitetalk.engine import InvalidInputError
from infinitetalk.media.mux import MP4_OPTIONS, add_h264_stream
from infinitetalk.media.output import OUTPUT_FPS

NORMALIZED_OPTIONS = {"preset": "veryfast", "crf": "18"}
"""Upstream re-reads every frame by index, so its copy is kept near lossless."""


@dataclass(frozen=True)
class VideoInput:
    width: int
    height: int
    seconds: float
    """The video stream's decoded length (its last frame's end)."""


def probe_video_input(
    path: Path,
    first_frame: Path,
    max_pixels: int = MAX_IMAGE_PIXELS,
    max_seconds: float = MAX_VIDEO_SECONDS,
) -> VideoInput:
    """Decode the first frame into `first_frame` (an RGB PNG) and measure the video.

    Raises InvalidInputError: VIDEO_UNDECODABLE when no frame decodes, IMAGE_TOO_LARGE for
    frames over `max_pixels`, VIDEO_TOO_LONG past `max_seconds` (decoding stops there)."""
    first: av.VideoFrame | None = None
    end = 0.0
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise InvalidInputError(
                    "the video has no video stream", FailureCode.VIDEO_UNDECODABLE
                )
            stream = container.streams.video[0]
            for frame in container.decode(stream):
                if first is None:
                    first = frame
                    _check_pixels(frame.width, frame.height, max_pixels)
                    frame.to_image().convert("RGB").save(first_frame, format="PNG")
                end = max(end, _frame_end(frame, stream))
                if end > max_seconds:
                    raise InvalidInputError(
                        f"video is longer than the limit of {max_seconds:g} s",
                        FailureCode.VIDEO_TOO_LONG,
                    )
    except InvalidInputError:
        raise
    except (av.FFmpegError, OSError, ValueError) as exc:
        where = "no frame of the video decodes" if first is None else "the video breaks off"
        raise InvalidInputError(f"{where}: {exc}", FailureCode.VIDEO_UNDECODABLE) from exc
    if first is None:
        raise InvalidInputError("no frame of the video decodes", FailureCode.VIDEO_UNDECODABLE)
    return VideoInput(first.width, first.height, end)


def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise InvalidInputError(
            f"video frames are {width}x{height} = {width * height} pixels; "
            f"the limit is {max_pixels}",
            FailureCode.IMAGE_TOO_LARGE,
        )


def _frame_end(frame: av.VideoFrame, stream: av.video.stream.VideoStream) -> float:
    if frame.pts is None or stream.time_base is None:
        return 0.0
    start = float(frame.pts * stream.time_base)
    rate = float(stream.average_rate or OUTPUT_FPS)
    return start + 1.0 / rate


def frames_at_output_rate(path: Path, count: int) -> Iterator[Image.Image]:
    """`count` RGB frames, one per 1/25 s of output: the source frame showing at that
    time, the last one again once the video has ended."""
    shown: Image.Image | None = None
    produced = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        base = stream.time_base
        for frame in container.decode(stream):
            start = float(frame.pts * base) if frame.pts is not None and base else 0.0
            while produced < count and produced / OUTPUT_FPS < start and shown is not None:
                yield shown
                produced += 1
            if produced >= count:
                return
            shown = frame.to_image().convert("RGB")
    if shown is None:
        raise InvalidInputError("no frame of the video decodes", FailureCode.VIDEO_UNDECODABLE)
    while produced < count:
        yield shown
        produced += 1


def normalize_video(path: Path, destination: Path, count: int) -> Path:
    """The video as upstream reads it: H.264 at 25 fps, frame `i` shown at output time
    `i / 25`, `count` frames (the audio's length; a shorter video's last frame is held,
    so upstream's own hold never starts mid-chunk). Upstream indexes frames by number,
    so a 30 fps source would drift without this."""
    with av.open(str(path)) as source:
        stream = source.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
    size = (width - width % 2, height - height % 2)
    with av.open(str(destination), "w", format="mp4", options=MP4_OPTIONS) as container:
        video = add_h264_stream(container, size, NORMALIZED_OPTIONS)
        for index, image in enumerate(frames_at_output_rate(path, count)):
            cropped = image.crop((0, 0, *size)) if image.size != size else image
            frame = av.VideoFrame.from_image(cropped).reformat(format="yuv420p")
            frame.pts = index
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
    return destination
