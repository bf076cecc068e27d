"""Preparing inputs for upstream: upright portrait, padded short audio, and the run's plan."""

import random
import wave
from pathlib import Path
from types import ModuleType

import pytest
from PIL import Image

from contracts import Quality, Resolution
from infinitetalk.engine import InvalidInputError, VideoRequest
from infinitetalk.media.probe import probe_audio
from infinitetalk.settings import InfiniteTalkSettings
from infinitetalk.upstream.prepare import PADDED_AUDIO_SECONDS, plan_job, upright_png

SETTINGS = InfiniteTalkSettings(timeout_base_seconds=100, timeout_per_audio_second=10)


def test_plan_for_seven_seconds_covers_every_frame(
    portrait_png: Path, speech_7s: Path, tmp_path: Path
) -> None:
    request = VideoRequest(portrait_png, speech_7s, "hello", Resolution.P720, seed=5)
    plan = plan_job(request, tmp_path / "inputs", SETTINGS)
    assert plan.frames == 175 and plan.chunks == 3
    assert plan.max_frame_num == 176  # above the 175 frames: upstream never cuts
    assert plan.target_frames == 175
    assert plan.size == (832, 1088)
    assert plan.seed == 5
    assert plan.timeout_seconds == 100 + 10 * 7
    assert not plan.padded and plan.audio_path == speech_7s.resolve()
    assert plan.image_path == (tmp_path / "inputs" / "portrait.png").resolve()
    assert plan.image_path.is_absolute() and plan.source_audio.is_absolute()


def test_the_plan_samples_as_the_jobs_quality_asks(
    portrait_png: Path, speech_7s: Path, tmp_path: Path
) -> None:
    standard = plan_job(VideoRequest(portrait_png, speech_7s, "hi"), tmp_path / "s", SETTINGS)
    assert standard.sampling == SETTINGS.sampling(Quality.STANDARD)
    request = VideoRequest(portrait_png, speech_7s, "hi", quality=Quality.FAST)
    fast = plan_job(request, tmp_path / "f", SETTINGS)
    assert (fast.sampling.steps, len(fast.sampling.lora)) == (4, 1)


def test_short_audio_is_padded_with_silence_for_upstream(
    portrait_png: Path, speech_wav: Path, tmp_path: Path
) -> None:
    plan = plan_job(VideoRequest(portrait_png, speech_wav, "hi"), tmp_path, SETTINGS)
    assert plan.padded
    assert plan.source_audio == speech_wav.resolve()
    padded = probe_audio(plan.audio_path)
    assert padded.duration_seconds == pytest.approx(PADDED_AUDIO_SECONDS, abs=1e-3)
    assert (padded.sample_rate, padded.channels) == (16000, 1)
    with wave.open(str(plan.audio_path)) as wav:
        tail = wav.readframes(wav.getnframes())[-1000:]
    assert set(tail) == {0}  # silence after the speech
    assert plan.frames == 87 and plan.chunks == 2
    assert plan.target_frames == 50  # the video is trimmed back to the 2 s of speech


def test_a_missing_seed_is_drawn_so_the_log_can_reproduce_it(
    portrait_png: Path, speech_7s: Path, tmp_path: Path
) -> None:
    request = VideoRequest(portrait_png, speech_7s, "hi")
    plan = plan_job(request, tmp_path, SETTINGS, rng=random.Random(1))
    assert plan.seed == random.Random(1).randint(0, 2**32 - 1)


def test_rotated_and_transparent_portraits_reach_upstream_upright_and_opaque(
    tmp_path: Path,
) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    Image.new("RGB", (300, 200), (200, 10, 10)).save(tmp_path / "r.jpg", exif=exif.tobytes())
    with Image.open(upright_png(tmp_path / "r.jpg", tmp_path / "r.png")) as img:
        assert img.size == (200, 300) and img.mode == "RGB"
    Image.new("RGBA", (64, 64), (255, 0, 0, 0)).save(tmp_path / "a.png")
    with Image.open(upright_png(tmp_path / "a.png", tmp_path / "b.png")) as img:
        assert img.getpixel((5, 5)) == (128, 128, 128)


def test_undecodable_inputs_are_invalid(portrait_png: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    with pytest.raises(InvalidInputError):
        plan_job(VideoRequest(portrait_png, bad, "x"), tmp_path, SETTINGS)


def test_stereo_44k_audio_pads_to_mono_16k(
    examples: ModuleType, portrait_png: Path, tmp_path: Path
) -> None:
    source = examples.make_speech_wav(
        tmp_path / "s.wav", seconds=1.0, sample_rate=44100, channels=2
    )
    plan = plan_job(VideoRequest(portrait_png, source, "x"), tmp_path / "w", SETTINGS)
    padded = probe_audio(plan.audio_path)
    assert (padded.sample_rate, padded.channels) == (16000, 1)
