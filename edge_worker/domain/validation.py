"""Input rules: media formats judged by content bytes, prompt and option checks.

Filenames and declared content types are never trusted; only the bytes decide.
"""

from contracts import ErrorCode, JobStatus, Quality, Resolution
from contracts.errors import (
    AudioTooLongDetails,
    ImageTooLargeDetails,
    MediaDetails,
    TooLargeDetails,
    VideoTooLongDetails,
)
from contracts.jobs import MAX_PARALLEL_SEGMENTS, Parallel
from contracts.media import (
    HEADER_SCAN_BYTES,
    MAX_VIDEO_SECONDS,
    MediaFormat,
    MediaKind,
    MiB,
    audio_seconds,
    image_size,
    sniff,
    video_header,
    wav_truncation,
)
from edge_worker.domain.problems import Problem, invalid_input

PROMPT_MAX_CHARS = 2000
SEED_MAX_DIGITS = len(str(2**32 - 1))
PARALLEL_RULE = (
    f"parallel must be off, auto or a number of segments from 2 to {MAX_PARALLEL_SEGMENTS}"
)
ACCEPTED = {
    MediaKind.IMAGE: "PNG or JPEG",
    MediaKind.AUDIO: "WAV or MP3",
    MediaKind.VIDEO: "MP4, MOV or WebM",
}


def require_format(field: str, kind: MediaKind, head: bytes) -> MediaFormat:
    fmt = sniff(head)
    if fmt is None or fmt.kind is not kind:
        raise Problem(
            ErrorCode.UNSUPPORTED_MEDIA,
            f"{field} must be {ACCEPTED[kind]}; its content is not",
            MediaDetails.model_validate({"field": field}),
        )
    return fmt


def check_wav_complete(head: bytes, size_bytes: int, field: str = "audio") -> None:
    """Streaming writers' unknown sizes are not judged here (the agent decodes every input)."""
    problem = wav_truncation(head, size_bytes)
    if problem is not None:
        raise invalid_input(problem, field)


def check_content(
    fmt: MediaFormat,
    head: bytes,
    size_bytes: int,
    max_image_pixels: int,
    max_audio_seconds: float,
    max_video_seconds: float = MAX_VIDEO_SECONDS,
) -> float | None:
    """Limits by content, from the headers in the file's first `HEADER_SCAN_BYTES` (`head`):
    a few KiB can declare gigapixels or hours, so the byte limits alone do not bound the
    work. The audio's length, when its header tells it, is returned: the job meters it."""
    if fmt.kind is MediaKind.IMAGE:
        check_image_pixels(head, max_image_pixels)
        return None
    if fmt.kind is MediaKind.VIDEO:
        check_video_seconds(head, max_video_seconds)
        return None
    seconds = audio_seconds(fmt, head, size_bytes)
    if seconds is not None and seconds > max_audio_seconds:
        raise Problem(
            ErrorCode.AUDIO_TOO_LONG,
            f"audio is {seconds:.1f} s long; the limit is {max_audio_seconds:g} s",
            AudioTooLongDetails(limit_seconds=max_audio_seconds, seconds=round(seconds, 3)),
        )
    return seconds


def check_video_seconds(head: bytes, limit: float) -> None:
    """The edge cannot decode video: an MP4/MOV whose `moov` comes first is judged by its
    header here, every other video by the agent once decoded (VIDEO_TOO_LONG either way)."""
    seconds = video_header(head).seconds
    if seconds is not None and seconds > limit:
        raise Problem(
            ErrorCode.VIDEO_TOO_LONG,
            f"video is {seconds:.1f} s long; the limit is {limit:g} s",
            VideoTooLongDetails(limit_seconds=limit, seconds=round(seconds, 3)),
        )


def check_image_pixels(head: bytes, limit: int) -> None:
    """Refused before anything decodes it: decoding costs memory per pixel, not per byte."""
    size = image_size(head)
    if size is None:
        raise invalid_input(
            f"image's width and height are not in its first {HEADER_SCAN_BYTES // MiB} MiB",
            "image",
        )
    width, height = size
    if width * height > limit:
        raise Problem(
            ErrorCode.IMAGE_TOO_LARGE,
            f"image is {width}x{height} = {width * height} pixels; the limit is {limit}",
            ImageTooLargeDetails(limit_pixels=limit, pixels=width * height),
        )


def check_size(field: str, size_bytes: int, limit: int) -> None:
    if size_bytes > limit:
        raise Problem(
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"{field} is larger than the limit of {limit // (1024 * 1024)} MiB",
            TooLargeDetails(limit_bytes=limit, field=field),
        )
    if size_bytes == 0:
        raise invalid_input(f"{field} is empty", field)


def parse_prompt(value: str | None) -> str:
    prompt = (value or "").strip()
    if not prompt:
        raise invalid_input("prompt is required", "prompt")
    if len(prompt) > PROMPT_MAX_CHARS:
        raise invalid_input(f"prompt must be at most {PROMPT_MAX_CHARS} characters", "prompt")
    return prompt


def parse_resolution(value: str | None) -> Resolution:
    if value in (None, ""):
        return Resolution.P720
    try:
        return Resolution(value)
    except ValueError:
        raise invalid_input("resolution must be one of 480p, 720p", "resolution") from None


def parse_quality(value: str | None) -> Quality:
    if value in (None, ""):
        return Quality.STANDARD
    try:
        return Quality(value)
    except ValueError:
        raise invalid_input(
            f"quality must be one of {', '.join(q.value for q in Quality)}", "quality"
        ) from None


def parse_seed(value: str | None) -> int | None:
    """ASCII digits only: `int()` would also take `"4_2"`, `" 42"` and other scripts' digits."""
    if value in (None, ""):
        return None
    if not (value.isascii() and value.isdigit()):
        raise invalid_input("seed must be a whole number in ASCII digits", "seed")
    if len(value) > SEED_MAX_DIGITS or int(value) >= 2**32:
        raise invalid_input("seed must be between 0 and 2^32-1", "seed")
    return int(value)


def parse_parallel(value: str | None) -> Parallel:
    """`off` (also when absent), `auto`, or a segment count in ASCII digits."""
    if value in (None, "", "off"):
        return "off"
    if value == "auto":
        return "auto"
    if (
        value is not None
        and value.isascii()
        and value.isdigit()
        and len(value) <= 2
        and 2 <= int(value) <= MAX_PARALLEL_SEGMENTS
    ):
        return int(value)
    raise invalid_input(PARALLEL_RULE, "parallel")


def parse_statuses(value: str | None) -> frozenset[JobStatus]:
    """`?status=pending,processing`: the job statuses to list; empty means all of them."""
    names = [name.strip() for name in (value or "").split(",") if name.strip()]
    try:
        return frozenset(JobStatus(name) for name in names)
    except ValueError:
        raise invalid_input(
            f"status must be one or more of {', '.join(s.value for s in JobStatus)}, "
            "comma-separated",
            "status",
        ) from None
