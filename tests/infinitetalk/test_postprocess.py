"""From upstream's frames to the output contract: original audio, faststart, verified."""

from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from types import ModuleType

import av
import numpy as np
import pytest

from contracts import Quality, Resolution
from infinitetalk.engine import EngineError
from infinitetalk.media.audio_pass import prepare_audio
from infinitetalk.media.probe import probe_video
from infinitetalk.settings import InfiniteTalkSettings
from infinitetalk.upstream.postprocess import finalize, write_frames
from infinitetalk.upstream.prepare import JobPlan

SIZE = (96, 128)


def raw_video(
    path: Path,
    frames: int,
    *,
    codec: str = "libx264",
    fps: int = 25,
    size: tuple[int, int] = SIZE,
    audio_16k: bool = True,
) -> Path:
    """A stand-in for upstream's file: H.264 without faststart, 16 kHz AAC beside it."""
    width, height = size
    with av.open(str(path), "w", format="mp4") as container:
        video = container.add_stream(codec, rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = container.add_stream("aac", rate=16000, layout="mono") if audio_16k else None
        for index in range(frames):
            pixels = np.full((height, width, 3), (index * 5) % 255, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = index
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if audio is not None:
            for start in range(0, int(frames / fps * 16000), 1024):
                samples = np.zeros((1, 1024), dtype=np.float32)
                chunk = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts = 16000, start
                chunk.time_base = Fraction(1, 16000)
                container.mux(audio.encode(chunk))
            container.mux(audio.encode(None))
    return path


def plan(audio: Path, seconds: float, target: int, tmp_path: Path) -> JobPlan:
    prepared = prepare_audio(audio, tmp_path / "audio")
    return JobPlan(
        image_path=tmp_path / "portrait.png",
        audio_path=audio,
        source_audio=audio,
        audio=replace(prepared, info=replace(prepared.info, duration_seconds=seconds)),
        prompt="x",
        resolution=Resolution.P480,
        size=SIZE,
        seed=1,
        frames=target,
        chunks=2,
        max_frame_num=target + 1,
        target_frames=target,
        timeout_seconds=60,
        sampling=InfiniteTalkSettings().sampling(Quality.STANDARD),
    )


@pytest.fixture(scope="module")
def speech_44k(examples: ModuleType, media_dir: Path) -> Path:
    """Four seconds of stereo 44.1 kHz: nothing like upstream's 16 kHz mono copy."""
    return examples.make_speech_wav(
        media_dir / "speech-44k.wav", seconds=4.0, sample_rate=44100, channels=2
    )


def packet_sizes(path: Path) -> list[int]:
    with av.open(str(path)) as container:
        return [p.size for p in container.demux(video=0) if p.size]


def test_write_frames_encodes_upstreams_tensor_layout(tmp_path: Path) -> None:
    video = np.full((3, 30, 64, 48), -1.0, dtype=np.float32)
    video[0] = 1.0  # red, in upstream's [-1, 1]
    reports: list[tuple[int, int]] = []
    frames, width, height = write_frames(
        video, tmp_path / "f.mp4", lambda d, t: reports.append((d, t))
    )
    assert (frames, width, height) == (30, 48, 64)
    info = probe_video(tmp_path / "f.mp4")
    assert (info.frame_count, info.video_codec, info.pix_fmt, info.fps) == (
        30,
        "h264",
        "yuv420p",
        25,
    )
    assert info.audio_codec is None
    assert reports == [(25, 30), (30, 30)]
    with av.open(str(tmp_path / "f.mp4")) as container:
        first = next(container.decode(video=0)).to_ndarray(format="rgb24")
    assert first[10, 10, 0] > 200 and first[10, 10, 1] < 60


def test_upstreams_video_is_kept_and_the_original_audio_muxed(
    speech_44k: Path, tmp_path: Path
) -> None:
    raw = raw_video(tmp_path / "raw.mp4", 100)
    info = finalize(raw, plan(speech_44k, 4.0, 100, tmp_path), tmp_path / "out.mp4")
    assert info.frame_count == 100 and (info.width, info.height) == SIZE
    assert info.audio_codec == "aac" and info.audio_sample_rate == 44100  # not upstream's 16 kHz
    assert info.faststart and not probe_video(raw).faststart
    assert packet_sizes(tmp_path / "out.mp4") == packet_sizes(raw)  # copied, not re-encoded


def test_padded_audios_video_is_trimmed_back(speech_wav: Path, tmp_path: Path) -> None:
    raw = raw_video(tmp_path / "raw.mp4", 87)  # upstream saw 3.5 s of padded audio
    info = finalize(raw, plan(speech_wav, 2.0, 50, tmp_path), tmp_path / "out.mp4")
    assert info.frame_count == 50
    assert info.audio_duration_seconds == pytest.approx(2.0, abs=0.04)


def test_a_non_h264_video_is_encoded_again(speech_44k: Path, tmp_path: Path) -> None:
    raw = raw_video(tmp_path / "raw.mp4", 100, codec="mpeg4")
    info = finalize(raw, plan(speech_44k, 4.0, 100, tmp_path), tmp_path / "out.mp4")
    assert (info.video_codec, info.frame_count) == ("h264", 100)


@pytest.mark.parametrize(
    ("frames", "fps", "message"),
    [(60, 25, "upstream made 60 frames for 4.00 s"), (100, 24, "runs at 24 fps, not 25")],
)
def test_wrong_frames_or_rate_fail_the_generation(
    speech_44k: Path, tmp_path: Path, frames: int, fps: int, message: str
) -> None:
    raw = raw_video(tmp_path / "raw.mp4", frames, fps=fps)
    with pytest.raises(EngineError, match=message) as caught:
        finalize(raw, plan(speech_44k, 4.0, 100, tmp_path), tmp_path / "out.mp4")
    assert caught.value.code == "GENERATION_FAILED" and caught.value.retryable


def test_an_unreadable_video_fails_the_generation(speech_44k: Path, tmp_path: Path) -> None:
    raw = tmp_path / "raw.mp4"
    raw.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100)
    with pytest.raises(EngineError, match="unreadable"):
        finalize(raw, plan(speech_44k, 4.0, 100, tmp_path), tmp_path / "out.mp4")


def test_an_output_breaking_the_contract_is_removed(speech_44k: Path, tmp_path: Path) -> None:
    raw = raw_video(tmp_path / "raw.mp4", 100)
    wrong_size = replace(plan(speech_44k, 4.0, 100, tmp_path), size=(640, 640))
    with pytest.raises(EngineError, match="size is 96x128, not 640x640"):
        finalize(raw, wrong_size, tmp_path / "out.mp4")
    assert not (tmp_path / "out.mp4").exists()


def test_a_failed_write_is_a_generation_failure(
    speech_44k: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = raw_video(tmp_path / "raw.mp4", 100, audio_16k=False)

    def broken(*args: object) -> None:
        raise av.FFmpegError(1, "muxer exploded")

    monkeypatch.setattr("infinitetalk.upstream.postprocess._copy", broken)
    with pytest.raises(EngineError, match="could not write the final video"):
        finalize(raw, plan(speech_44k, 4.0, 100, tmp_path), tmp_path / "out.mp4")
    assert not (tmp_path / "out.mp4").exists()
