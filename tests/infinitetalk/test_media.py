"""Probes and the output contract (infinitetalk.media), on real files made for each case."""

import dataclasses
import struct
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from types import ModuleType

import av
import numpy as np
import pytest
from PIL import Image, ImageFile

from contracts import FailureCode, Resolution
from infinitetalk.engine import AudioInfo, EngineError, InvalidInputError
from infinitetalk.media import probe
from infinitetalk.media.output import output_size, verify_output
from infinitetalk.media.probe import (
    ImageInfo,
    VideoInfo,
    probe_audio,
    probe_image,
    probe_video,
)
from tests.conftest import blank_png_bytes

WriteBytes = Callable[[str, bytes], Path]


def _save_image(path: Path, size: tuple[int, int], fmt: str, **params: object) -> Path:
    Image.new("RGB", size, (120, 80, 60)).save(path, format=fmt, **params)
    return path


def _wav_bytes(
    samples: int, *, riff_size: int | None = None, data_size: int | None = None
) -> bytes:
    """A 16 kHz mono 16-bit WAV with `samples` of tone, with size fields overridable."""
    pcm = (np.sin(np.arange(samples) / 5.0) * 8000).astype("<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, 16000, 32000, 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"note" + struct.pack("<I", 3) + b"abc\x00"
    body += b"data" + struct.pack("<I", len(pcm) if data_size is None else data_size) + pcm
    size = len(body) if riff_size is None else riff_size
    return b"RIFF" + struct.pack("<I", size) + body


def _strip_id3(data: bytes) -> bytes:
    assert data.startswith(b"ID3")
    size = 0
    for byte in data[6:10]:
        size = (size << 7) | byte
    return data[10 + size :]


def _write_video(path: Path, *, container_format: str, faststart: bool, audio: bool) -> Path:
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", format=container_format, options=options) as out:
        video = out.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 64, 64, "yuv420p"
        sound = out.add_stream("aac", rate=16000, layout="mono") if audio else None
        for index in range(10):
            frame = av.VideoFrame.from_ndarray(np.zeros((96, 64), np.uint8), format="yuv420p")
            frame.pts = index
            out.mux(video.encode(frame))
        if sound is not None:
            for start in range(0, 6400, 1024):
                chunk = av.AudioFrame.from_ndarray(
                    np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
                )
                chunk.sample_rate, chunk.pts, chunk.time_base = 16000, start, Fraction(1, 16000)
                out.mux(sound.encode(chunk))
            out.mux(sound.encode(None))
        out.mux(video.encode(None))
    return path


# --- images ---------------------------------------------------------------------------


def test_png_portrait_is_measured(portrait_png: Path) -> None:
    assert probe_image(portrait_png) == ImageInfo(width=512, height=640, format="PNG")


def test_jpeg_portrait_is_measured(portrait_jpeg: Path) -> None:
    assert probe_image(portrait_jpeg) == ImageInfo(width=512, height=640, format="JPEG")


def test_format_is_judged_by_content_not_name(portrait_jpeg: Path, tmp_path: Path) -> None:
    renamed = tmp_path / "actually-a-jpeg.png"
    renamed.write_bytes(portrait_jpeg.read_bytes())
    assert probe_image(renamed).format == "JPEG"


def test_exif_rotation_swaps_the_displayed_size(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    path = _save_image(tmp_path / "rotated.jpg", (200, 100), "JPEG", exif=exif.tobytes())
    assert probe_image(path) == ImageInfo(width=100, height=200, format="JPEG")


def test_text_file_named_png_is_refused(write_bytes: WriteBytes) -> None:
    path = write_bytes("notes.png", b"just some text, not an image\n")
    with pytest.raises(InvalidInputError, match="neither PNG nor JPEG"):
        probe_image(path)


def test_gif_is_refused(tmp_path: Path) -> None:
    path = _save_image(tmp_path / "anim.gif", (100, 100), "GIF")
    with pytest.raises(InvalidInputError, match="neither PNG nor JPEG"):
        probe_image(path)


def test_empty_image_is_refused(write_bytes: WriteBytes) -> None:
    with pytest.raises(InvalidInputError, match="empty") as caught:
        probe_image(write_bytes("empty.png", b""))
    assert caught.value.code == "INVALID_INPUT"
    assert caught.value.retryable is False


def test_missing_image_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="cannot be read"):
        probe_image(tmp_path / "nowhere.png")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_image_is_refused(fmt: str, tmp_path: Path) -> None:
    noise = np.random.default_rng(1).integers(0, 255, (300, 300, 3), dtype=np.uint8)
    whole = tmp_path / f"whole.{fmt.lower()}"
    Image.fromarray(noise).save(whole, format=fmt)
    cut = tmp_path / f"cut.{fmt.lower()}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(InvalidInputError, match=f"{fmt} image cannot be decoded"):
        probe_image(cut)


def test_png_with_corrupt_data_is_refused(portrait_png: Path, tmp_path: Path) -> None:
    data = bytearray(portrait_png.read_bytes())
    idat = data.index(b"IDAT")
    data[idat + 40 : idat + 60] = bytes(20)
    path = tmp_path / "corrupt.png"
    path.write_bytes(bytes(data))
    with pytest.raises(InvalidInputError, match="cannot be decoded"):
        probe_image(path)


def test_tiny_image_is_refused(tmp_path: Path) -> None:
    path = _save_image(tmp_path / "tiny.png", (32, 100), "PNG")
    with pytest.raises(InvalidInputError, match="each side must be 64-8192 px"):
        probe_image(path)


def test_huge_image_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(probe, "MAX_IMAGE_SIDE", 300)
    path = _save_image(tmp_path / "huge.png", (200, 301), "PNG")
    with pytest.raises(InvalidInputError, match="200x301"):
        probe_image(path)


def test_an_image_of_too_many_pixels_is_refused_before_it_is_decoded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 12's 261 KB PNG of 8192x8192 RGBA took the agent from 208 to 1407 MiB."""
    path = tmp_path / "huge.png"
    path.write_bytes(blank_png_bytes(8192, 8192))

    def decoded(image: ImageFile.ImageFile) -> None:
        raise AssertionError("the pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", decoded)
    with pytest.raises(InvalidInputError, match="8192x8192 = 67108864 pixels") as refused:
        probe_image(path)
    assert refused.value.code == FailureCode.IMAGE_TOO_LARGE


def test_the_pixel_limit_is_the_caller_s(tmp_path: Path) -> None:
    path = _save_image(tmp_path / "p.jpg", (96, 120), "JPEG")
    assert probe_image(path, max_pixels=96 * 120) == ImageInfo(96, 120, "JPEG")
    with pytest.raises(InvalidInputError, match="the limit is 11519"):
        probe_image(path, max_pixels=96 * 120 - 1)


def test_extreme_aspect_ratio_is_refused(tmp_path: Path) -> None:
    path = _save_image(tmp_path / "banner.png", (1000, 200), "PNG")
    with pytest.raises(InvalidInputError, match="aspect ratio"):
        probe_image(path)


# --- audio ----------------------------------------------------------------------------


def test_wav_is_measured_by_its_samples(speech_wav: Path) -> None:
    assert probe_audio(speech_wav) == AudioInfo(
        duration_seconds=2.0, sample_rate=16000, channels=1, codec="pcm_s16le"
    )


def test_stereo_wav_is_measured(examples: ModuleType, tmp_path: Path) -> None:
    path = examples.make_speech_wav(tmp_path / "s.wav", seconds=1.5, sample_rate=44100, channels=2)
    info = probe_audio(path)
    assert (info.duration_seconds, info.sample_rate, info.channels) == (1.5, 44100, 2)


def test_mp3_is_measured(speech_mp3: Path) -> None:
    info = probe_audio(speech_mp3)
    assert info.codec == "mp3"
    assert (info.sample_rate, info.channels) == (44100, 2)
    assert info.duration_seconds == pytest.approx(2.0, abs=0.03)


def test_mp3_without_id3_tag_is_recognised_by_frame_sync(
    speech_mp3: Path, write_bytes: WriteBytes
) -> None:
    path = write_bytes("bare.mp3", _strip_id3(speech_mp3.read_bytes()))
    assert probe_audio(path).codec == "mp3"


def test_text_file_named_wav_is_refused(write_bytes: WriteBytes) -> None:
    with pytest.raises(InvalidInputError, match="neither WAV nor MP3"):
        probe_audio(write_bytes("speech.wav", b"hello, this is not audio at all"))


def _write_adts(path: Path) -> Path:
    """Half a second of AAC in ADTS framing: frame sync like MP3, but layer bits 00."""
    with av.open(str(path), "w", format="adts") as out:
        stream = out.add_stream("aac", rate=16000, layout="mono")
        for start in range(0, 8192, 1024):
            frame = av.AudioFrame.from_ndarray(
                np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
            )
            frame.sample_rate, frame.pts = 16000, start
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def test_adts_aac_is_not_taken_for_mp3(tmp_path: Path) -> None:
    path = _write_adts(tmp_path / "speech.aac")
    assert path.read_bytes()[:2] == b"\xff\xf1"
    with pytest.raises(InvalidInputError, match="neither WAV nor MP3"):
        probe_audio(path)


def test_empty_audio_is_refused(write_bytes: WriteBytes) -> None:
    with pytest.raises(InvalidInputError, match="audio file is empty"):
        probe_audio(write_bytes("empty.wav", b""))


def test_truncated_wav_is_refused(speech_wav: Path, write_bytes: WriteBytes) -> None:
    data = speech_wav.read_bytes()
    path = write_bytes("cut.wav", data[: len(data) // 2])
    with pytest.raises(InvalidInputError, match="audio is truncated"):
        probe_audio(path)


def test_wav_whose_data_chunk_overruns_the_file_is_refused(write_bytes: WriteBytes) -> None:
    data = _wav_bytes(1600, data_size=10_000)
    with pytest.raises(InvalidInputError, match="data chunk ends at byte"):
        probe_audio(write_bytes("overrun.wav", data))


def test_streamed_wav_with_unknown_sizes_is_decoded(write_bytes: WriteBytes) -> None:
    data = _wav_bytes(1600, riff_size=0xFFFFFFFF, data_size=0xFFFFFFFF)
    assert probe_audio(write_bytes("streamed.wav", data)).duration_seconds == 0.1


def test_wav_with_padded_odd_chunk_is_decoded(write_bytes: WriteBytes) -> None:
    assert probe_audio(write_bytes("list.wav", _wav_bytes(800))).duration_seconds == 0.05


def test_wav_without_data_chunk_is_refused(write_bytes: WriteBytes) -> None:
    data = _wav_bytes(0)
    header_only = data[: data.index(b"data")]
    header_only = header_only[:4] + struct.pack("<I", len(header_only) - 8) + header_only[8:]
    with pytest.raises(InvalidInputError, match="no data chunk"):
        probe_audio(write_bytes("nodata.wav", header_only))


def test_wav_without_samples_is_refused(write_bytes: WriteBytes) -> None:
    with pytest.raises(InvalidInputError, match="no decodable audio"):
        probe_audio(write_bytes("silent.wav", _wav_bytes(0)))


def test_undecodable_mp3_is_refused(write_bytes: WriteBytes) -> None:
    data = b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 40
    with pytest.raises(InvalidInputError, match="MP3"):
        probe_audio(write_bytes("garbage.mp3", data))


def test_id3_tag_before_other_audio_is_refused(write_bytes: WriteBytes, tmp_path: Path) -> None:
    adts = _write_adts(tmp_path / "speech.aac").read_bytes()
    path = write_bytes("tagged.mp3", b"ID3\x04\x00\x00\x00\x00\x00\x00" + adts)
    with pytest.raises(InvalidInputError, match=r"starts like MP3 .*found aac"):
        probe_audio(path)


def test_wav_header_around_another_container_is_refused(
    speech_mp3: Path, write_bytes: WriteBytes
) -> None:
    mp3 = speech_mp3.read_bytes()
    data = b"RIFF" + struct.pack("<I", len(mp3) + 12) + b"WAVEdata" + struct.pack("<I", 0) + mp3
    with pytest.raises(InvalidInputError, match="WAV"):
        probe_audio(write_bytes("odd.wav", data))


# --- video ----------------------------------------------------------------------------


def test_plain_mp4_without_audio_or_faststart(tmp_path: Path) -> None:
    info = probe_video(
        _write_video(tmp_path / "v.mp4", container_format="mp4", faststart=False, audio=False)
    )
    assert (info.width, info.height, info.fps, info.frame_count) == (64, 64, 25.0, 10)
    assert (info.video_codec, info.pix_fmt) == ("h264", "yuv420p")
    assert info.duration_seconds == pytest.approx(0.4)
    assert info.faststart is False
    assert (info.audio_codec, info.audio_duration_seconds, info.audio_sample_rate) == (
        None,
        None,
        None,
    )


def test_faststart_mp4_with_audio(tmp_path: Path) -> None:
    info = probe_video(
        _write_video(tmp_path / "v.mp4", container_format="mp4", faststart=True, audio=True)
    )
    assert info.faststart is True
    assert (info.audio_codec, info.audio_sample_rate) == ("aac", 16000)
    assert info.audio_duration_seconds == pytest.approx(7 * 1024 / 16000)


def test_matroska_is_not_faststart(tmp_path: Path) -> None:
    info = probe_video(
        _write_video(tmp_path / "v.mkv", container_format="matroska", faststart=False, audio=True)
    )
    assert info.faststart is False
    assert info.frame_count == 10


def test_audio_only_file_is_not_a_video(speech_mp3: Path) -> None:
    with pytest.raises(InvalidInputError, match="no video stream"):
        probe_video(speech_mp3)


@pytest.mark.parametrize(
    ("data", "message"), [(b"", "video file is empty"), (b"not a video" * 50, "cannot be read")]
)
def test_unreadable_video_is_refused(data: bytes, message: str, write_bytes: WriteBytes) -> None:
    with pytest.raises(InvalidInputError, match=message):
        probe_video(write_bytes("v.mp4", data))


def _box(kind: bytes, payload: bytes = b"", size: int | None = None) -> bytes:
    return struct.pack(">I", 8 + len(payload) if size is None else size) + kind + payload


@pytest.mark.parametrize(
    ("data", "faststart"),
    [
        (_box(b"ftyp", b"isom") + _box(b"moov") + _box(b"mdat"), True),
        (_box(b"ftyp", b"isom") + _box(b"mdat") + _box(b"moov"), False),
        (struct.pack(">I4sQ", 1, b"free", 24) + bytes(8) + _box(b"moov"), True),
        (_box(b"ftyp") + _box(b"free", size=0) + _box(b"moov"), False),
        (_box(b"ftyp") + _box(b"junk", size=4) + _box(b"moov"), False),
        (_box(b"ftyp") + _box(b"free"), False),
    ],
)
def test_top_level_box_walk(data: bytes, faststart: bool, write_bytes: WriteBytes) -> None:
    assert probe._moov_before_mdat(write_bytes("boxes.mp4", data)) is faststart


# --- output size and output checks ---------------------------------------------------


@pytest.mark.parametrize(
    ("size", "resolution", "expected"),
    [
        ((512, 640), Resolution.P720, (720, 900)),
        ((512, 640), Resolution.P480, (480, 600)),
        ((1280, 720), Resolution.P480, (854, 480)),
        ((1920, 1080), Resolution.P720, (1280, 720)),
        ((333, 501), Resolution.P480, (480, 722)),
        ((1000, 1000), Resolution.P720, (720, 720)),
        ((300, 301), Resolution.P480, (480, 482)),
    ],
)
def test_output_size(
    size: tuple[int, int], resolution: Resolution, expected: tuple[int, int]
) -> None:
    assert output_size(*size, resolution) == expected


def test_output_size_needs_a_real_size() -> None:
    with pytest.raises(ValueError, match="positive"):
        output_size(0, 100, Resolution.P480)


GOOD = VideoInfo(
    duration_seconds=6.0,
    width=720,
    height=900,
    fps=25.0,
    video_codec="h264",
    pix_fmt="yuv420p",
    audio_codec="aac",
    audio_duration_seconds=6.0,
    audio_sample_rate=16000,
    faststart=True,
    frame_count=150,
)


def test_good_output_passes() -> None:
    verify_output(GOOD, 6.0, (720, 900))
    verify_output(dataclasses.replace(GOOD, duration_seconds=6.04), 6.0, (720, 900))
    verify_output(GOOD, 6.039, (720, 900))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"video_codec": "hevc"}, "video codec is hevc"),
        ({"pix_fmt": "yuv444p"}, "pixel format is yuv444p"),
        ({"fps": 30.0}, "frame rate is 30"),
        ({"width": 722}, "size is 722x900, not 720x900"),
        ({"height": 960}, "size is 720x960"),
        ({"audio_codec": "mp3"}, "audio codec is mp3"),
        ({"audio_codec": None, "audio_duration_seconds": None}, "audio codec is None"),
        ({"faststart": False}, "no faststart"),
        ({"duration_seconds": 6.08}, "video lasts 6.080 s"),
        ({"duration_seconds": 5.9}, "video lasts 5.900 s"),
        ({"audio_duration_seconds": 5.5}, "muxed audio lasts 5.5 s"),
        ({"audio_duration_seconds": None}, "muxed audio lasts None s"),
    ],
)
def test_each_broken_property_is_refused(change: dict[str, object], message: str) -> None:
    with pytest.raises(EngineError, match=message) as caught:
        verify_output(dataclasses.replace(GOOD, **change), 6.0, (720, 900))
    assert caught.value.code == "GENERATION_FAILED"


def test_every_broken_property_is_named_at_once() -> None:
    broken = dataclasses.replace(GOOD, video_codec="vp9", faststart=False)
    with pytest.raises(EngineError) as caught:
        verify_output(broken, 6.0, (720, 900))
    assert "vp9" in caught.value.message
    assert "faststart" in caught.value.message
