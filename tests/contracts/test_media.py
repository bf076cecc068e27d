"""contracts.media: the one home of the media rules the edge, the agent and the engines share."""

import struct

import pytest

from contracts.media import (
    JPEG,
    MAX_AUDIO_BYTES,
    MAX_IMAGE_BYTES,
    MP3,
    PNG,
    SNIFF_BYTES,
    WAV,
    EngineName,
    MediaFormat,
    MediaKind,
    is_mp3_frame,
    sniff,
    wav_declared_size,
    wav_truncation,
)

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
