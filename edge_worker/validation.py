"""Input rules: media formats judged by content bytes, prompt and option checks.

Filenames and declared content types are never trusted; only the bytes decide.
"""

import struct
from dataclasses import dataclass
from enum import StrEnum

from contracts import ErrorCode, Quality, Resolution
from edge_worker.errors import ApiError

PROMPT_MAX_CHARS = 2000
SNIFF_BYTES = 64


class MediaKind(StrEnum):
    IMAGE = "image"
    AUDIO = "audio"


@dataclass(frozen=True)
class MediaFormat:
    kind: MediaKind
    extension: str
    content_type: str


PNG = MediaFormat(MediaKind.IMAGE, "png", "image/png")
JPEG = MediaFormat(MediaKind.IMAGE, "jpg", "image/jpeg")
WAV = MediaFormat(MediaKind.AUDIO, "wav", "audio/wav")
MP3 = MediaFormat(MediaKind.AUDIO, "mp3", "audio/mpeg")


def _is_mp3_frame(head: bytes) -> bool:
    if len(head) < 4 or head[0] != 0xFF or (head[1] & 0xE0) != 0xE0:
        return False
    version, layer = (head[1] >> 3) & 0x3, (head[1] >> 1) & 0x3
    bitrate, rate = head[2] >> 4, (head[2] >> 2) & 0x3
    return version != 1 and layer != 0 and bitrate not in (0, 15) and rate != 3


def sniff(head: bytes) -> MediaFormat | None:
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return WAV
    if head.startswith(b"ID3") or _is_mp3_frame(head):
        return MP3
    return None


def require_format(field: str, kind: MediaKind, head: bytes) -> MediaFormat:
    fmt = sniff(head)
    if fmt is None or fmt.kind is not kind:
        accepted = "PNG or JPEG" if kind is MediaKind.IMAGE else "WAV or MP3"
        raise ApiError(
            ErrorCode.UNSUPPORTED_MEDIA,
            f"{field} must be {accepted}; its content is not",
            {"field": field},
        )
    return fmt


def check_wav_complete(head: bytes, size_bytes: int) -> None:
    """A WAV whose RIFF header promises more bytes than arrived is truncated.

    Streaming writers put 0 or 0xFFFFFFFF in the size field; those are not judged here
    (the agent decodes every input before using it).
    """
    if len(head) < 12:
        raise ApiError(ErrorCode.INVALID_INPUT, "audio is truncated", {"field": "audio"})
    (riff_size,) = struct.unpack_from("<I", head, 4)
    if riff_size in (0, 0xFFFFFFFF):
        return
    if riff_size + 8 > size_bytes:
        raise ApiError(
            ErrorCode.INVALID_INPUT,
            f"audio is truncated: its WAV header declares {riff_size + 8} bytes, "
            f"but {size_bytes} arrived",
            {"field": "audio"},
        )


def check_size(field: str, size_bytes: int, limit: int) -> None:
    if size_bytes > limit:
        raise ApiError(
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"{field} is larger than the limit of {limit // (1024 * 1024)} MiB",
            {"field": field, "limit_bytes": limit},
        )
    if size_bytes == 0:
        raise ApiError(ErrorCode.INVALID_INPUT, f"{field} is empty", {"field": field})


def parse_prompt(value: str | None) -> str:
    prompt = (value or "").strip()
    if not prompt:
        raise ApiError(ErrorCode.INVALID_INPUT, "prompt is required", {"field": "prompt"})
    if len(prompt) > PROMPT_MAX_CHARS:
        raise ApiError(
            ErrorCode.INVALID_INPUT,
            f"prompt must be at most {PROMPT_MAX_CHARS} characters",
            {"field": "prompt"},
        )
    return prompt


def parse_resolution(value: str | None) -> Resolution:
    if value in (None, ""):
        return Resolution.P720
    try:
        return Resolution(value)
    except ValueError:
        raise ApiError(
            ErrorCode.INVALID_INPUT,
            "resolution must be one of 480p, 720p",
            {"field": "resolution"},
        ) from None


def parse_quality(value: str | None) -> Quality:
    if value in (None, ""):
        return Quality.STANDARD
    try:
        return Quality(value)
    except ValueError:
        raise ApiError(
            ErrorCode.INVALID_INPUT,
            f"quality must be one of {', '.join(q.value for q in Quality)}",
            {"field": "quality"},
        ) from None


def parse_seed(value: str | int | None) -> int | None:
    if value in (None, ""):
        return None
    try:
        seed = int(value)
    except (TypeError, ValueError):
        raise ApiError(
            ErrorCode.INVALID_INPUT, "seed must be an integer", {"field": "seed"}
        ) from None
    if not 0 <= seed < 2**32:
        raise ApiError(
            ErrorCode.INVALID_INPUT, "seed must be between 0 and 2^32-1", {"field": "seed"}
        )
    return seed
