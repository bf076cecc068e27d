"""Media rules shared by the edge, the agent and the engines: formats, sniffing, limits.

Only the bytes decide what a file is; filenames and declared content types are never
trusted. Everything here is pure (no I/O), so the edge can run it under Pyodide and the
agent and the engines can run it on downloaded files.
"""

import struct
from dataclasses import dataclass
from enum import StrEnum

MiB = 1024 * 1024
MAX_IMAGE_BYTES = 10 * MiB
"""The public limit on a portrait (docs/API.md); the edge refuses more, the agent too."""
MAX_AUDIO_BYTES = 50 * MiB
"""The public limit on a speech recording (docs/API.md)."""
SNIFF_BYTES = 64
"""How many leading bytes `sniff` and `wav_truncation` need."""


class EngineName(StrEnum):
    """The video engines an agent can run."""

    PREVIEW = "preview"
    INFINITETALK = "infinitetalk"


class MediaKind(StrEnum):
    IMAGE = "image"
    AUDIO = "audio"


@dataclass(frozen=True)
class MediaFormat:
    kind: MediaKind
    extension: str
    content_type: str

    @property
    def suffix(self) -> str:
        return f".{self.extension}"


PNG = MediaFormat(MediaKind.IMAGE, "png", "image/png")
JPEG = MediaFormat(MediaKind.IMAGE, "jpg", "image/jpeg")
WAV = MediaFormat(MediaKind.AUDIO, "wav", "audio/wav")
MP3 = MediaFormat(MediaKind.AUDIO, "mp3", "audio/mpeg")

_WAV_UNKNOWN_SIZES = frozenset({0, 0xFFFFFFFF})
"""What streaming writers put in a RIFF size field before they know the length."""


def is_mp3_frame(head: bytes) -> bool:
    """An MPEG-1/2/2.5 layer III frame header (ADTS AAC, layer bits 00, is not MP3)."""
    if len(head) < 4 or head[0] != 0xFF or (head[1] & 0xE0) != 0xE0:
        return False
    version, layer = (head[1] >> 3) & 0x3, (head[1] >> 1) & 0x3
    bitrate, rate = head[2] >> 4, (head[2] >> 2) & 0x3
    return version != 1 and layer == 1 and bitrate not in (0, 15) and rate != 3


def sniff(head: bytes) -> MediaFormat | None:
    """The format of a file from its first `SNIFF_BYTES` bytes, or None when unknown."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return WAV
    if head.startswith(b"ID3") or is_mp3_frame(head):
        return MP3
    return None


def wav_declared_size(head: bytes) -> int | None:
    """The file size a WAV's RIFF header promises; None when the writer did not know it."""
    if len(head) < 8:
        return None
    (riff_size,) = struct.unpack_from("<I", head, 4)
    return None if riff_size in _WAV_UNKNOWN_SIZES else riff_size + 8


def wav_truncation(head: bytes, size_bytes: int) -> str | None:
    """Why a WAV of `size_bytes` whose file starts with `head` is truncated, or None."""
    if len(head) < 12:
        return "audio is truncated"
    declared = wav_declared_size(head)
    if declared is not None and declared > size_bytes:
        return (
            f"audio is truncated: its WAV header declares {declared} bytes, "
            f"but {size_bytes} arrived"
        )
    return None
