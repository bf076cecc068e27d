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
    VIDEO = "video"


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
MP4 = MediaFormat(MediaKind.VIDEO, "mp4", "video/mp4")
MOV = MediaFormat(MediaKind.VIDEO, "mov", "video/quicktime")
WEBM = MediaFormat(MediaKind.VIDEO, "webm", "video/webm")

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
    return _sniff_video(head)


_NOT_VIDEO_BRANDS = frozenset(
    {b"M4A ", b"M4B ", b"M4P ", b"heic", b"heix", b"mif1", b"msf1", b"avif", b"jp2 "}
)
"""ISO BMFF major brands of audio and still images: an `ftyp` alone does not make a video."""
_QUICKTIME_FIRST_ATOMS = frozenset({b"moov", b"mdat", b"wide"})
"""What QuickTime files written before `ftyp` existed start with."""
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_EBML_DOCTYPE = b"\x42\x82"


def _sniff_video(head: bytes) -> MediaFormat | None:
    """MP4 and MOV by their first box (`ftyp` and its major brand), WebM by its EBML
    header's DocType; Matroska other than WebM is not accepted."""
    box = head[4:8]
    if box == b"ftyp" and len(head) >= 12:
        brand = head[8:12]
        if brand in _NOT_VIDEO_BRANDS:
            return None
        return MOV if brand == b"qt  " else MP4
    if box in _QUICKTIME_FIRST_ATOMS:
        return MOV
    if head.startswith(_EBML_MAGIC):
        found = head.find(_EBML_DOCTYPE, 4)
        if found != -1 and found + 3 <= len(head):
            size = head[found + 2] & 0x7F  # a one-byte EBML size: 0x80 | length
            if head[found + 3 : found + 3 + size] == b"webm":
                return WEBM
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


MAX_AUDIO_SECONDS = 600.0
"""The default limit on a speech recording's length (docs/API.md): 10 minutes."""
MAX_IMAGE_PIXELS = 16 * MiB
"""The default limit on a portrait's width x height (16 MP): decoding costs memory per pixel."""
HEADER_SCAN_BYTES = MiB
"""How many leading bytes `image_size` and `audio_seconds` are given: JPEG metadata and
ID3 tags come before what they read, and larger ones are rare."""

_JPEG_SOF = frozenset(
    {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
)
"""Start-of-frame markers (not DHT C4, JPG C8 or DAC CC): they carry the image's size."""
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
"""Markers with no length field after them."""
_MP3_BITRATES_KBPS = (
    (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),  # MPEG-1 layer III
    (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),  # MPEG-2/2.5 layer III
)
_MP3_SAMPLE_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}
"""By the header's version bits: 3 MPEG-1, 2 MPEG-2, 0 MPEG-2.5."""


def image_size(head: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR or a JPEG's start-of-frame, read before any
    decoding; None when `head` holds neither."""
    if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR" and len(head) >= 24:
        width, height = struct.unpack_from(">II", head, 16)
        return width, height
    if not head.startswith(b"\xff\xd8"):
        return None
    position = 2
    while position + 4 <= len(head):
        if head[position] != 0xFF:
            return None
        marker = head[position + 1]
        if marker == 0xFF:  # fill byte before a marker
            position += 1
        elif marker in _JPEG_STANDALONE:
            position += 2
        elif marker in _JPEG_SOF:
            if position + 9 > len(head):
                return None
            height, width = struct.unpack_from(">HH", head, position + 5)
            return width, height
        elif marker in (0xD9, 0xDA):  # end of image, or scan data before any frame
            return None
        else:
            (length,) = struct.unpack_from(">H", head, position + 2)
            position += 2 + length
    return None


def wav_seconds(head: bytes, size_bytes: int) -> float | None:
    """A WAV's length from its `fmt ` byte rate and `data` size (what arrived, when the
    writer did not know it); None when `head` does not reach both chunks."""
    byte_rate = 0
    position = 12
    while position + 8 <= len(head):
        chunk_id = head[position : position + 4]
        (chunk_size,) = struct.unpack_from("<I", head, position + 4)
        if chunk_id == b"fmt " and position + 20 <= len(head):
            (byte_rate,) = struct.unpack_from("<I", head, position + 16)
        elif chunk_id == b"data":
            if byte_rate == 0:
                return None
            available = size_bytes - position - 8
            declared = wav_declared_size(head[position : position + 8])
            data_size = available if declared is None else min(declared - 8, available)
            return max(data_size, 0) / byte_rate
        position += 8 + chunk_size + (chunk_size & 1)
    return None


def _mp3_frame(head: bytes) -> tuple[int, int, int] | None:
    """(frame bytes, samples in it, sample rate) of the layer III frame `head` starts with."""
    if not is_mp3_frame(head):
        return None
    version = (head[1] >> 3) & 0x3
    bitrate = _MP3_BITRATES_KBPS[version != 3][head[2] >> 4] * 1000
    rate = _MP3_SAMPLE_RATES[version][(head[2] >> 2) & 0x3]
    samples = 1152 if version == 3 else 576
    padding = (head[2] >> 1) & 0x1
    return samples // 8 * bitrate // rate + padding, samples, rate


def _id3_end(head: bytes) -> int:
    """Where the audio starts after an ID3v2 tag (its size is four 7-bit bytes)."""
    if not head.startswith(b"ID3") or len(head) < 10:
        return 0
    size = 0
    for byte in head[6:10]:
        size = (size << 7) | (byte & 0x7F)
    footer = 10 if head[5] & 0x10 else 0
    return 10 + size + footer


def _vbr_frame_count(frame: bytes) -> int | None:
    """The frame count a Xing/Info or VBRI header in the first frame declares, if any."""
    version, mono = (frame[1] >> 3) & 0x3, (frame[3] >> 6) == 3
    side_info = (17 if mono else 32) if version == 3 else (9 if mono else 17)
    xing = 4 + side_info
    if frame[xing : xing + 4] in (b"Xing", b"Info") and len(frame) >= xing + 12:
        (flags,) = struct.unpack_from(">I", frame, xing + 4)
        if flags & 1:
            (count,) = struct.unpack_from(">I", frame, xing + 8)
            return int(count)
    if frame[36:40] == b"VBRI" and len(frame) >= 54:
        (count,) = struct.unpack_from(">I", frame, 50)
        return int(count)
    return None


def mp3_seconds(head: bytes, size_bytes: int) -> float | None:
    """An MP3's length: the frame count of its Xing/Info/VBRI header, else its frames
    walked over `head`, scaled up to `size_bytes` when `head` is only the file's start.
    None when `head` holds no frame after the ID3 tag."""
    start = _id3_end(head)
    first = _mp3_frame(head[start : start + 4])
    if first is None:
        return None
    frame_bytes, samples, rate = first
    count = _vbr_frame_count(head[start : start + frame_bytes])
    if count is not None:
        return count * samples / rate
    position, walked = start, 0.0
    frame: tuple[int, int, int] | None = first
    while frame is not None:
        walked += frame[1] / frame[2]
        position += frame[0]
        frame = _mp3_frame(head[position : position + 4])
    if len(head) >= size_bytes:
        return walked
    return walked * (size_bytes - start) / (position - start)


def audio_seconds(fmt: MediaFormat, head: bytes, size_bytes: int) -> float | None:
    """The length of a WAV or MP3 of `size_bytes` that starts with `head`, from its
    headers alone; None when they do not tell."""
    if fmt is WAV:
        return wav_seconds(head, size_bytes)
    if fmt is MP3:
        return mp3_seconds(head, size_bytes)
    return None


MAX_VIDEO_BYTES = 200 * MiB
"""The default limit on a video to dub (docs/API.md); larger than the inline cap, so videos
above it go through `POST /uploads`."""
MAX_VIDEO_SECONDS = 600.0
"""The default limit on a video's length: the agent decodes it, the edge reads MP4/MOV headers."""


@dataclass(frozen=True)
class VideoHeader:
    """What an MP4/MOV's `moov` box says before any decoding (None where it does not tell)."""

    seconds: float | None
    size: tuple[int, int] | None
    """(width, height) of the first track with a picture (`tkhd`)."""


_CONTAINER_BOXES = frozenset({b"moov", b"trak"})


def _boxes(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of the ISO BMFF boxes in data[start:end] that
    fit in it; 64-bit sizes included, a size running past `end` stops the walk."""
    found = []
    position = start
    while position + 8 <= end:
        (size,) = struct.unpack_from(">I", data, position)
        kind = data[position + 4 : position + 8]
        header = 8
        if size == 1 and position + 16 <= end:
            (size,) = struct.unpack_from(">Q", data, position + 8)
            header = 16
        elif size == 0:
            size = end - position
        if size < header or position + size > end:
            if kind in _CONTAINER_BOXES:  # a truncated container: read what arrived
                found.append((kind, position + header, end))
            break
        found.append((kind, position + header, position + size))
        position += size
    return found


def video_header(head: bytes) -> VideoHeader:
    """Length and picture size from an MP4/MOV's `mvhd` and `tkhd` boxes when `moov` lies
    within `head` (a "faststart" file); WebM and files with `moov` at the end tell nothing
    here and are measured by the agent, which decodes them."""
    seconds: float | None = None
    size: tuple[int, int] | None = None
    for kind, start, end in _boxes(head, 0, len(head)):
        if kind != b"moov":
            continue
        for inner, inner_start, inner_end in _boxes(head, start, end):
            if inner == b"mvhd" and seconds is None:
                seconds = _mvhd_seconds(head, inner_start, inner_end)
            elif inner == b"trak" and size is None:
                for leaf, leaf_start, leaf_end in _boxes(head, inner_start, inner_end):
                    if leaf == b"tkhd":
                        size = _tkhd_size(head, leaf_start, leaf_end)
    return VideoHeader(seconds, size)


def _mvhd_seconds(data: bytes, start: int, end: int) -> float | None:
    version = data[start]
    if version == 1 and start + 32 <= end:
        timescale, duration = struct.unpack_from(">IQ", data, start + 20)
    elif version == 0 and start + 20 <= end:
        timescale, duration = struct.unpack_from(">II", data, start + 12)
    else:
        return None
    return duration / timescale if timescale else None


def _tkhd_size(data: bytes, start: int, end: int) -> tuple[int, int] | None:
    """Width and height are the box's last 8 bytes, 16.16 fixed point; 0 for sound tracks."""
    if end - start < 84 or end > len(data):
        return None
    width, height = struct.unpack_from(">II", data, end - 8)
    width, height = width >> 16, height >> 16
    return (width, height) if width and height else None
