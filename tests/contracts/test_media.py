"""contracts.media: the one home of the media rules the edge, the agent and the engines share."""

import io
import struct

import pytest
from PIL import Image

from contracts.media import (
    JPEG,
    MAX_AUDIO_BYTES,
    MAX_AUDIO_SECONDS,
    MAX_IMAGE_BYTES,
    MAX_IMAGE_PIXELS,
    MP3,
    PNG,
    SNIFF_BYTES,
    WAV,
    EngineName,
    MediaFormat,
    MediaKind,
    audio_seconds,
    image_size,
    is_mp3_frame,
    mp3_seconds,
    sniff,
    wav_declared_size,
    wav_seconds,
    wav_truncation,
)
from tests.conftest import blank_png_bytes, mp3_bytes, png_bytes, wav_bytes

MiB = 1024 * 1024
MPEG1_LAYER3 = b"\xff\xfb\x90\x64"
"""MPEG-1 layer III, 128 kbit/s, 44.1 kHz: the commonest MP3 frame header."""


def riff(size: int, form: bytes = b"WAVE") -> bytes:
    return b"RIFF" + struct.pack("<I", size) + form + b"fmt "


def test_the_public_limits_and_engine_names() -> None:
    assert (MAX_IMAGE_BYTES, MAX_AUDIO_BYTES) == (10 * 1024 * 1024, 50 * 1024 * 1024)
    assert SNIFF_BYTES >= 12
    assert [name.value for name in EngineName] == ["preview", "infinitetalk"]


@pytest.mark.parametrize(
    ("fmt", "kind", "suffix", "content_type"),
    [
        (PNG, MediaKind.IMAGE, ".png", "image/png"),
        (JPEG, MediaKind.IMAGE, ".jpg", "image/jpeg"),
        (WAV, MediaKind.AUDIO, ".wav", "audio/wav"),
        (MP3, MediaKind.AUDIO, ".mp3", "audio/mpeg"),
    ],
)
def test_each_format_names_its_kind_suffix_and_type(
    fmt: MediaFormat, kind: MediaKind, suffix: str, content_type: str
) -> None:
    assert (fmt.kind, fmt.suffix, fmt.content_type) == (kind, suffix, content_type)


@pytest.mark.parametrize(
    "head",
    [
        MPEG1_LAYER3,
        b"\xff\xfa\x90\x64",  # MPEG-1 layer III with a CRC
        b"\xff\xf3\x64\x00",  # MPEG-2 layer III
        b"\xff\xe3\x64\x00",  # MPEG-2.5 layer III
    ],
)
def test_layer_three_frames_are_mp3(head: bytes) -> None:
    assert is_mp3_frame(head)
    assert sniff(head) is MP3


@pytest.mark.parametrize(
    ("head", "why"),
    [
        (b"\xff\xfd\x90\x64", "MPEG-1 layer II"),
        (b"\xff\xff\x90\x64", "MPEG-1 layer I"),
        (b"\xff\xf1\x50\x80", "ADTS AAC: layer bits 00"),
        (b"\xff\xeb\x90\x64", "reserved MPEG version"),
        (b"\xff\xfb\x00\x64", "free-format bitrate"),
        (b"\xff\xfb\xf0\x64", "bad bitrate index"),
        (b"\xff\xfb\x9c\x64", "reserved sample rate"),
        (b"\xfe\xfb\x90\x64", "no frame sync"),
        (b"\xff\x1b\x90\x64", "sync bits incomplete"),
        (b"\xff\xfb\x90", "a head too short to hold a frame header"),
        (b"", "nothing"),
    ],
)
def test_other_frames_are_not_mp3(head: bytes, why: str) -> None:
    assert not is_mp3_frame(head), why
    assert sniff(head) is None, why


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\x89PNG\r\n\x1a\n" + bytes(8), PNG),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", JPEG),
        (riff(36), WAV),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00", MP3),
        (b"ID3", MP3),
        (riff(36, b"AVI "), None),
        (b"XXXX\x00\x00\x00\x00WAVE", None),
        (b"\x89PNG", None),
        (b"GIF89a", None),
        (b"", None),
    ],
)
def test_sniff_judges_by_the_first_bytes(head: bytes, expected: MediaFormat | None) -> None:
    assert sniff(head) is expected


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (riff(36), 44),
        (riff(0), None),  # a streaming writer that never came back to fill it in
        (riff(0xFFFFFFFF), None),  # "until the end of the file"
        (b"RIFF\x24\x00\x00", None),  # too short to hold the size
        (b"", None),
    ],
)
def test_wav_declared_size(head: bytes, expected: int | None) -> None:
    assert wav_declared_size(head) == expected


def test_a_wav_shorter_than_its_header_declares_is_truncated() -> None:
    assert wav_truncation(riff(1000), 500) == (
        "audio is truncated: its WAV header declares 1008 bytes, but 500 arrived"
    )


@pytest.mark.parametrize(
    ("head", "size"),
    [
        (riff(1000), 1008),
        (riff(1000), 4096),  # trailing bytes after the RIFF chunk are harmless
        (riff(0), 100),
        (riff(0xFFFFFFFF), 100),
    ],
)
def test_complete_or_unknown_size_wavs_are_not_truncated(head: bytes, size: int) -> None:
    assert wav_truncation(head, size) is None


@pytest.mark.parametrize("head", [b"", b"RIFF", riff(36)[:11]])
def test_a_wav_cut_inside_its_header_is_truncated(head: bytes) -> None:
    assert wav_truncation(head, len(head)) == "audio is truncated"


def test_the_content_limits() -> None:
    assert (MAX_AUDIO_SECONDS, MAX_IMAGE_PIXELS) == (600, 16_777_216)


def jpeg_bytes(size: tuple[int, int], **options: object) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 150, 120)).save(buf, "JPEG", **options)
    return buf.getvalue()


SOF0 = b"\xff\xc0\x00\x11\x08" + struct.pack(">HH", 480, 640) + bytes(12)
"""A baseline start-of-frame segment: height 480, width 640."""


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (png_bytes((300, 200)), (300, 200)),
        (blank_png_bytes(8192, 8192)[:SNIFF_BYTES], (8192, 8192)),
        (jpeg_bytes((321, 123)), (321, 123)),
        (jpeg_bytes((321, 123), progressive=True), (321, 123)),
        (jpeg_bytes((64, 96), exif=Image.Exif(), comment=b"x" * 5000), (64, 96)),
        (b"\xff\xd8\xff\xff\xff\x01\xff\xd0" + SOF0, (640, 480)),  # fill, TEM and RST
        (b"\xff\xd8\xff\xc4\x00\x04\x00\x00" + SOF0, (640, 480)),  # DHT is no frame
    ],
)
def test_image_size_reads_the_header(head: bytes, expected: tuple[int, int]) -> None:
    assert image_size(head) == expected


@pytest.mark.parametrize(
    ("head", "why"),
    [
        (b"GIF89a" + bytes(40), "not PNG or JPEG"),
        (b"\x89PNG\r\n\x1a\n" + bytes(4) + b"IDAT" + bytes(8), "first chunk is not IHDR"),
        (png_bytes()[:20], "IHDR cut short"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "cut inside the first segment"),
        (b"\xff\xd8\xff\xda\x00\x02" + SOF0, "scan data before any frame"),
        (b"\xff\xd8\xff\xd9" + SOF0, "end of image"),
        (b"\xff\xd8\x00\xc0" + SOF0, "no marker where one must be"),
        (b"\xff\xd8" + SOF0[:8], "frame header cut short"),
    ],
)
def test_image_size_is_none_when_the_header_does_not_tell(head: bytes, why: str) -> None:
    assert image_size(head) is None, why


def chunk(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("<I", len(body)) + body


FMT_8K_MONO16 = chunk(b"fmt ", struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16))
"""PCM, mono, 8 kHz, 16 000 bytes a second."""


@pytest.mark.parametrize(
    ("wav", "size", "expected"),
    [
        (wav_bytes(2.5), None, 2.5),
        (
            riff(0)
            + FMT_8K_MONO16[4:]
            + chunk(b"LIST", b"odd")
            + b"\0"
            + chunk(b"data", bytes(32000)),
            None,
            2.0,
        ),
        (riff(0) + FMT_8K_MONO16[4:] + b"data" + b"\xff" * 4, 44 + 48000, 3.0),  # size unknown
        (riff(0) + FMT_8K_MONO16[4:] + chunk(b"data", bytes(16000))[:8], 44 + 8000, 0.5),  # cut
        (wav_bytes(2.5)[:40], None, None),  # the data chunk's header is not in `head`
        (riff(0) + b"\x00\x00\x00\x00" + chunk(b"data", bytes(8)), None, None),  # no fmt first
        (riff(0) + FMT_8K_MONO16[4:24], None, None),  # fmt cut before its byte rate
    ],
)
def test_wav_seconds(wav: bytes, size: int | None, expected: float | None) -> None:
    assert wav_seconds(wav, len(wav) if size is None else size) == expected


MPEG1_FRAME = MPEG1_LAYER3 + bytes(413)
"""One 417-byte frame of 1152 samples at 44.1 kHz (joint stereo: Xing/VBRI at byte 36)."""


def test_mp3_seconds_from_the_xing_header_lame_writes() -> None:
    mp3 = mp3_bytes(20)
    assert mp3_seconds(mp3, len(mp3)) == pytest.approx(20, abs=0.2)
    assert mp3_seconds(mp3[:2000], len(mp3)) == mp3_seconds(mp3, len(mp3))


def test_mp3_seconds_walks_the_frames_without_a_header_and_scales_a_prefix() -> None:
    mp3 = mp3_bytes(20, xing=False)
    assert mp3_seconds(mp3, len(mp3)) == pytest.approx(20, abs=0.2)
    assert mp3_seconds(mp3[:4000], len(mp3)) == pytest.approx(20, abs=0.5)
    assert mp3_seconds(mp3[:4000], 10 * len(mp3)) == pytest.approx(200, abs=5)


@pytest.mark.parametrize(
    ("first", "frames"),
    [
        (MPEG1_LAYER3 + bytes(32) + b"Xing" + struct.pack(">II", 1, 10_000), 10_000),
        (MPEG1_LAYER3 + bytes(32) + b"Info" + struct.pack(">II", 3, 7), 7),
        (MPEG1_LAYER3 + bytes(32) + b"VBRI" + bytes(10) + struct.pack(">I", 500), 500),
        (b"\xff\xfb\x90\xc4" + bytes(17) + b"Xing" + struct.pack(">II", 1, 100), 100),  # mono
    ],
)
def test_mp3_seconds_from_a_vbr_header(first: bytes, frames: int) -> None:
    head = first.ljust(417, b"\0") + MPEG1_FRAME
    assert mp3_seconds(head, 10 * MiB) == pytest.approx(frames * 1152 / 44100)


def test_mp3_seconds_walks_when_the_xing_header_has_no_frame_count() -> None:
    first = (MPEG1_LAYER3 + bytes(32) + b"Xing" + struct.pack(">II", 2, 99)).ljust(417, b"\0")
    head = first + MPEG1_FRAME * 2 + b"TAG" + bytes(125)
    assert mp3_seconds(head, len(head)) == pytest.approx(3 * 1152 / 44100)


def test_mp3_seconds_skips_the_id3_tag() -> None:
    tag = b"ID3\x04\x00\x10" + bytes([0, 0, 0, 10]) + bytes(20)  # 10 bytes, and a footer
    head = tag + MPEG1_FRAME * 4
    assert mp3_seconds(head, len(head)) == pytest.approx(4 * 1152 / 44100)


@pytest.mark.parametrize(
    "head",
    [
        b"ID3\x04\x00\x00" + bytes([0x7F, 0x7F, 0x7F, 0x7F]) + MPEG1_FRAME,  # tag past `head`
        b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"junk" + MPEG1_FRAME,
        b"ID3\x04",
    ],
)
def test_mp3_seconds_is_none_without_a_frame_after_the_tag(head: bytes) -> None:
    assert mp3_seconds(head, 10 * MiB) is None


def test_audio_seconds_by_format() -> None:
    wav = wav_bytes(1.0)
    assert audio_seconds(WAV, wav, len(wav)) == 1.0
    assert audio_seconds(MP3, MPEG1_FRAME, len(MPEG1_FRAME)) == pytest.approx(1152 / 44100)
    assert audio_seconds(PNG, png_bytes(), 1000) is None
