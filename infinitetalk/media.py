"""Probe and check media files: the agent's inputs before a job and its own output after.

Everything is judged by content, never by file name, and decoded for real: a header alone
says nothing about whether the rest of a file is there. Unusable inputs raise
`InvalidInputError`; an output that breaks the output contract (DESIGN.md section 6)
raises `EngineError("GENERATION_FAILED")`.
"""

import struct
from dataclasses import dataclass
from pathlib import Path

import av
from PIL import Image

from contracts import FailureCode, Resolution
from infinitetalk.engine import EngineError, InvalidInputError

OUTPUT_FPS = 25
FRAME_SECONDS = 1.0 / OUTPUT_FPS
MIN_IMAGE_SIDE = 64
MAX_IMAGE_SIDE = 8192
MAX_ASPECT_RATIO = 4.0
"""Wider or taller portraits would make videos no player or encoder level accepts."""

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
_EXIF_ORIENTATION = 0x0112
_ROTATED_ORIENTATIONS = frozenset({5, 6, 7, 8})
_WAV_UNKNOWN_SIZES = frozenset({0, 0xFFFFFFFF})
"""Size fields that streaming WAV writers leave behind: "until the end of the file"."""
_DURATION_TOLERANCE = FRAME_SECONDS + 1e-6


@dataclass(frozen=True)
class ImageInfo:
    """A decodable portrait; width and height as displayed, after any EXIF rotation."""

    width: int
    height: int
    format: str
    """`PNG` or `JPEG`."""


@dataclass(frozen=True)
class AudioInfo:
    """A decodable speech track; its duration counts decoded samples, not header claims."""

    duration_seconds: float
    sample_rate: int
    channels: int
    codec: str


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


def probe_image(path: Path | str) -> ImageInfo:
    """Check that `path` is a fully decodable PNG or JPEG of a sensible size."""
    path = Path(path)
    head = _read_head(path, 16, "image")
    if head.startswith(_PNG_MAGIC):
        fmt = "PNG"
    elif head.startswith(_JPEG_MAGIC):
        fmt = "JPEG"
    else:
        raise InvalidInputError("image is neither PNG nor JPEG (judged by its content)")
    try:
        with Image.open(path, formats=[fmt]) as img:
            img.verify()
        with Image.open(path, formats=[fmt]) as img:
            width, height = img.size
            _check_image_size(width, height)
            img.load()
            orientation = img.getexif().get(_EXIF_ORIENTATION)
    except InvalidInputError:
        raise
    except Exception as exc:
        raise InvalidInputError(f"{fmt} image cannot be decoded: {exc}") from exc
    if orientation in _ROTATED_ORIENTATIONS:
        width, height = height, width
    return ImageInfo(width=width, height=height, format=fmt)


def probe_audio(path: Path | str) -> AudioInfo:
    """Check that `path` is a complete WAV or MP3 and measure it by decoding every sample."""
    path = Path(path)
    head = _read_head(path, 12, "audio")
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        _check_wav_chunks(path)
        expected_format = "wav"
    elif head[:3] == b"ID3" or _is_mp3_frame_header(head):
        expected_format = "mp3"
    else:
        raise InvalidInputError("audio is neither WAV nor MP3 (judged by its content)")
    try:
        with av.open(str(path)) as container:
            if container.format.name != expected_format or not container.streams.audio:
                raise InvalidInputError(
                    f"file starts like {expected_format.upper()} but holds no such audio"
                    f" (found {container.format.name})"
                )
            stream = container.streams.audio[0]
            codec = stream.codec_context.codec.canonical_name
            sample_rate = stream.codec_context.sample_rate
            channels = stream.codec_context.channels
            samples = sum(frame.samples for frame in container.decode(stream))
    except av.FFmpegError as exc:
        raise InvalidInputError(
            f"{expected_format.upper()} audio cannot be decoded: {exc}"
        ) from exc
    if samples == 0 or sample_rate <= 0:
        raise InvalidInputError(f"{expected_format.upper()} file holds no decodable audio")
    return AudioInfo(
        duration_seconds=samples / sample_rate,
        sample_rate=sample_rate,
        channels=channels,
        codec=codec,
    )


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
            if audio is not None and audio.duration is not None:
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


def _round_even(value: float) -> int:
    return max(2, round(value / 2) * 2)


def _read_head(path: Path, size: int, kind: str) -> bytes:
    try:
        with path.open("rb") as handle:
            head = handle.read(size)
    except OSError as exc:
        raise InvalidInputError(f"{kind} file cannot be read: {exc}") from exc
    if not head:
        raise InvalidInputError(f"{kind} file is empty")
    return head


def _check_image_size(width: int, height: int) -> None:
    if min(width, height) < MIN_IMAGE_SIDE or max(width, height) > MAX_IMAGE_SIDE:
        raise InvalidInputError(
            f"image is {width}x{height}; each side must be {MIN_IMAGE_SIDE}-{MAX_IMAGE_SIDE} px"
        )
    if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        raise InvalidInputError(
            f"image is {width}x{height}; the aspect ratio may be at most {MAX_ASPECT_RATIO:g}:1"
        )


def _is_mp3_frame_header(head: bytes) -> bool:
    """MPEG audio frame sync with layer III (layer bits 01); ADTS AAC has layer bits 00."""
    return len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] & 0x06 == 0x02


def _check_wav_chunks(path: Path) -> None:
    """Compare the RIFF and data chunk sizes with the file: decoders quietly accept a cut file."""
    file_size = path.stat().st_size
    with path.open("rb") as handle:
        riff_size = struct.unpack("<I", handle.read(12)[4:8])[0]
        if riff_size not in _WAV_UNKNOWN_SIZES and riff_size + 8 > file_size:
            raise InvalidInputError(
                f"WAV is truncated: header announces {riff_size + 8} bytes, file has {file_size}"
            )
        position = 12
        while position + 8 <= file_size:
            handle.seek(position)
            chunk_id, chunk_size = struct.unpack("<4sI", handle.read(8))
            if chunk_id == b"data":
                end = position + 8 + chunk_size
                if chunk_size not in _WAV_UNKNOWN_SIZES and end > file_size:
                    raise InvalidInputError(
                        f"WAV is truncated: data chunk ends at byte {end}, file has {file_size}"
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
