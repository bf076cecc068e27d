"""Probe media files: the agent's inputs before a job and every engine's output after.

Formats are told apart by `contracts.media.sniff` (content, never the file name), then
decoded for real: a header alone says nothing about whether the rest of a file is there.
Unusable files raise `InvalidInputError`.
"""

import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import av
from PIL import Image

from contracts import FailureCode
from contracts.media import (
    JPEG,
    MAX_IMAGE_PIXELS,
    MP3,
    PNG,
    SNIFF_BYTES,
    WAV,
    sniff,
    wav_declared_size,
    wav_truncation,
)
from infinitetalk.engine import AudioInfo, InvalidInputError

MIN_IMAGE_SIDE = 64
MAX_IMAGE_SIDE = 8192
MAX_ASPECT_RATIO = 4.0
"""Wider or taller portraits would make videos no player or encoder level accepts."""

AudioSink = Callable[[av.AudioFrame | None], None]
"""Takes every decoded frame of a probed audio file, then None once the last has passed."""

_EXIF_ORIENTATION = 0x0112
_ROTATED_ORIENTATIONS = frozenset({5, 6, 7, 8})


@dataclass(frozen=True)
class ImageInfo:
    """A decodable portrait; width and height as displayed, after any EXIF rotation."""

    width: int
    height: int
    format: str
    """`PNG` or `JPEG`."""


@dataclass(frozen=True)
class VideoInfo:
    """A video as a viewer meets it.

    `duration_seconds` is the video stream's: frame_count / fps. `audio_duration_seconds`
    is the audio stream's duration after the container's edit list (which hides AAC
    priming), or None when there is no audio or the container does not record it.
    """

    duration_seconds: float
    width: int
    height: int
    fps: float
    video_codec: str
    pix_fmt: str
    audio_codec: str | None
    audio_duration_seconds: float | None
    audio_sample_rate: int | None
    faststart: bool
    frame_count: int


def probe_image(path: Path | str, max_pixels: int = MAX_IMAGE_PIXELS) -> ImageInfo:
    """Check that `path` is a fully decodable PNG or JPEG of a sensible size.

    The size is judged from the header before any pixel is decoded (a few hundred KiB of
    PNG can inflate to gigabytes), and JPEGs decode at 1/8 scale: decoding is the check,
    the pixels are not kept.
    """
    path = Path(path)
    sniffed = sniff(_read_head(path, SNIFF_BYTES, "image"))
    if sniffed not in (PNG, JPEG):
        raise InvalidInputError("image is neither PNG nor JPEG (judged by its content)")
    fmt = "PNG" if sniffed is PNG else "JPEG"
    try:
        with Image.open(path, formats=[fmt]) as img:
            width, height = img.size
            _check_image_size(width, height, max_pixels)
            img.verify()
        with Image.open(path, formats=[fmt]) as img:
            img.draft(None, (1, 1))
            img.load()
            orientation = img.getexif().get(_EXIF_ORIENTATION)
    except InvalidInputError:
        raise
    except Exception as exc:
        raise InvalidInputError(f"{fmt} image cannot be decoded: {exc}") from exc
    if orientation in _ROTATED_ORIENTATIONS:
        width, height = height, width
    return ImageInfo(width=width, height=height, format=fmt)


def probe_audio(path: Path | str, sinks: Sequence[AudioSink] = ()) -> AudioInfo:
    """Check that `path` is a complete WAV or MP3 and measure it by decoding every sample.

    Each decoded frame also goes to `sinks`, so whatever else a job needs from the samples
    is made in this one decode. Only the file's own faults make it invalid: a sink's
    error is raised as it is.
    """
    path = Path(path)
    head = _read_head(path, SNIFF_BYTES, "audio")
    sniffed = sniff(head)
    if sniffed is None or sniffed not in (WAV, MP3):
        raise InvalidInputError("audio is neither WAV nor MP3 (judged by its content)")
    if sniffed is WAV:
        _check_wav_chunks(path, head)
    name = sniffed.extension.upper()
    try:
        container = av.open(str(path))
    except av.FFmpegError as exc:
        raise InvalidInputError(f"{name} audio cannot be decoded: {exc}") from exc
    with container:
        if container.format.name != sniffed.extension or not container.streams.audio:
            raise InvalidInputError(
                f"file starts like {name} but holds no such audio (found {container.format.name})"
            )
        stream = container.streams.audio[0]
        codec = stream.codec_context.codec.canonical_name
        sample_rate = stream.codec_context.sample_rate
        channels = stream.codec_context.channels
        samples = 0
        for frame in _decoded(container, stream, name):
            for sink in sinks:
                sink(frame)
            samples += frame.samples if frame is not None else 0
    if samples == 0 or sample_rate <= 0:
        raise InvalidInputError(f"{name} file holds no decodable audio")
    return AudioInfo(
        duration_seconds=samples / sample_rate,
        sample_rate=sample_rate,
        channels=channels,
        codec=codec,
    )


def _decoded(
    container: av.container.InputContainer, stream: av.audio.stream.AudioStream, name: str
) -> Iterator[av.AudioFrame | None]:
    """The stream's frames, then None; a decoding error makes the input invalid."""
    frames = container.decode(stream)
    while True:
        try:
            frame = next(frames, None)
        except av.FFmpegError as exc:
            raise InvalidInputError(f"{name} audio cannot be decoded: {exc}") from exc
        yield frame
        if frame is None:
            return


def probe_video(path: Path | str) -> VideoInfo:
    """Measure a video file the way a viewer would meet it: counted frames, real durations."""
    path = Path(path)
    _read_head(path, 8, "video")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise InvalidInputError("file holds no video stream")
            video = container.streams.video[0]
            rate = video.average_rate or video.guessed_rate
            fps = float(rate) if rate else 0.0
            audio = container.streams.audio[0] if container.streams.audio else None
            audio_duration = None
            if audio is not None and audio.duration is not None and audio.time_base:
                audio_duration = float(audio.duration * audio.time_base)
            frame_count = sum(1 for packet in container.demux(video) if packet.size)
            info = VideoInfo(
                duration_seconds=frame_count / fps if fps else 0.0,
                width=video.codec_context.width,
                height=video.codec_context.height,
                fps=fps,
                video_codec=video.codec_context.codec.canonical_name,
                pix_fmt=video.codec_context.pix_fmt or "",
                audio_codec=audio.codec_context.codec.canonical_name if audio else None,
                audio_duration_seconds=audio_duration,
                audio_sample_rate=audio.codec_context.sample_rate if audio else None,
                faststart=_moov_before_mdat(path),
                frame_count=frame_count,
            )
    except av.FFmpegError as exc:
        raise InvalidInputError(f"video cannot be read: {exc}") from exc
    return info


def _read_head(path: Path, size: int, kind: str) -> bytes:
    try:
        with path.open("rb") as handle:
            head = handle.read(size)
    except OSError as exc:
        raise InvalidInputError(f"{kind} file cannot be read: {exc}") from exc
    if not head:
        raise InvalidInputError(f"{kind} file is empty")
    return head


def _check_image_size(width: int, height: int, max_pixels: int) -> None:
    if min(width, height) < MIN_IMAGE_SIDE or max(width, height) > MAX_IMAGE_SIDE:
        raise InvalidInputError(
            f"image is {width}x{height}; each side must be {MIN_IMAGE_SIDE}-{MAX_IMAGE_SIDE} px"
        )
    if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        raise InvalidInputError(
            f"image is {width}x{height}; the aspect ratio may be at most {MAX_ASPECT_RATIO:g}:1"
        )
    if width * height > max_pixels:
        raise InvalidInputError(
            f"image is {width}x{height} = {width * height} pixels; the limit is {max_pixels}",
            FailureCode.IMAGE_TOO_LARGE,
        )


def _check_wav_chunks(path: Path, head: bytes) -> None:
    """Compare the RIFF and data chunk sizes with the file: decoders quietly accept a cut file.

    A chunk header has the RIFF header's layout (id, little-endian size), so
    `wav_declared_size` reads the data chunk's size too, unknown sizes included.
    """
    file_size = path.stat().st_size
    truncated = wav_truncation(head, file_size)
    if truncated is not None:
        raise InvalidInputError(truncated)
    with path.open("rb") as handle:
        position = 12
        while position + 8 <= file_size:
            handle.seek(position)
            chunk = handle.read(8)
            chunk_size = struct.unpack_from("<I", chunk, 4)[0]
            if chunk[:4] == b"data":
                declared = wav_declared_size(chunk)
                if declared is not None and position + declared > file_size:
                    raise InvalidInputError(
                        f"audio is truncated: its WAV data chunk ends at byte "
                        f"{position + declared}, but the file has {file_size}"
                    )
                return
            position += 8 + chunk_size + (chunk_size & 1)
    raise InvalidInputError("WAV has no data chunk")


def _moov_before_mdat(path: Path) -> bool:
    """Walk the top-level MP4 boxes: players can start streaming only if `moov` comes first."""
    file_size = path.stat().st_size
    with path.open("rb") as handle:
        position = 0
        while position + 8 <= file_size:
            handle.seek(position)
            header = handle.read(16)
            box_size, box_type = struct.unpack(">I4s", header[:8])
            if box_type == b"moov":
                return True
            if box_type == b"mdat":
                return False
            if box_size == 1 and len(header) == 16:
                box_size = struct.unpack(">Q", header[8:16])[0]
            elif box_size == 0:
                box_size = file_size - position
            if box_size < 8:
                return False
            position += box_size
    return False
