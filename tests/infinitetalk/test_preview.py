"""The preview engine end to end: real MP4s checked with the same probes the agent uses."""

import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import av
import numpy as np
import pytest
from PIL import Image

from contracts import Quality, Resolution, Stage
from infinitetalk.engine import (
    CancelledError,
    EngineError,
    InvalidInputError,
    VideoRequest,
    VideoResult,
)
from infinitetalk.factory import create_engine
from infinitetalk.media import mux
from infinitetalk.media.audio_pass import prepare_audio, read_loudness
from infinitetalk.media.output import FRAME_SECONDS
from infinitetalk.media.probe import VideoInfo, probe_audio, probe_video
from infinitetalk.preview import engine as preview
from infinitetalk.preview import face
from infinitetalk.preview.engine import PreviewEngine
from infinitetalk.preview.motion import Motion


@dataclass
class Recorder:
    """Collects progress reports and answers the engine's cancellation polls."""

    cancel_after: int | None = None
    events: list[tuple[float, Stage, float | None]] = field(default_factory=list)
    polls: int = 0

    def progress(self, percent: float, stage: Stage, eta: float | None) -> None:
        self.events.append((percent, stage, eta))

    def cancelled(self) -> bool:
        self.polls += 1
        return self.cancel_after is not None and self.polls > self.cancel_after


Render = Callable[..., tuple[VideoResult, Recorder]]


@pytest.fixture
def render(tmp_path: Path) -> Render:
    def run(
        image: Path,
        audio: Path,
        resolution: Resolution = Resolution.P480,
        recorder: Recorder | None = None,
        seed: int | None = None,
    ) -> tuple[VideoResult, Recorder]:
        recorder = recorder or Recorder()
        request = VideoRequest(image, audio, "a person talking", resolution, seed)
        result = PreviewEngine().generate(
            request, tmp_path / "work", recorder.progress, recorder.cancelled
        )
        return result, recorder

    return run


@pytest.fixture(scope="session")
def portrait_result(
    portrait_png: Path, speech_wav: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[VideoResult, Recorder]:
    """One 480p render shared by the tests that only inspect it."""
    recorder = Recorder()
    request = VideoRequest(portrait_png, speech_wav, "a person talking", Resolution.P480)
    result = PreviewEngine().generate(
        request, tmp_path_factory.mktemp("work"), recorder.progress, recorder.cancelled
    )
    return result, recorder


def _check_contract(path: Path, audio: Path, size: tuple[int, int]) -> VideoInfo:
    info = probe_video(path)
    assert (info.video_codec, info.pix_fmt, info.fps) == ("h264", "yuv420p", 25.0)
    assert (info.width, info.height) == size
    assert info.audio_codec == "aac"
    assert info.faststart is True
    source = probe_audio(audio).duration_seconds
    assert abs(info.duration_seconds - source) <= FRAME_SECONDS
    assert info.audio_duration_seconds is not None
    assert abs(info.audio_duration_seconds - source) <= FRAME_SECONDS
    return info


def test_portrait_becomes_a_contract_mp4(
    portrait_result: tuple[VideoResult, Recorder], speech_wav: Path
) -> None:
    result, _ = portrait_result
    info = _check_contract(result.path, speech_wav, (480, 600))
    assert info.frame_count == 50
    assert info.audio_sample_rate == 16000
    assert result.path.name == "preview.mp4"
    assert (result.width, result.height, result.engine) == (480, 600, "preview")
    assert result.duration_seconds == pytest.approx(2.0)


def test_output_is_labelled_as_a_preview(
    portrait_result: tuple[VideoResult, Recorder],
) -> None:
    with av.open(str(portrait_result[0].path)) as container:
        assert "not InfiniteTalk" in container.metadata.get("comment", "")


def _frames(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="gray") for f in container.decode(video=0)])


def motion_of(audio: Path, workdir: Path, frames: int, seed: int | None) -> Motion:
    """The motion the preview makes of `audio`, from the loudness of its one pass."""
    loudness = read_loudness(prepare_audio(audio, workdir).loudness_path)
    return Motion.from_loudness(loudness, frames, (480, 600), seed)


def test_mouth_moves_with_the_audio_and_the_label_stays(
    portrait_result: tuple[VideoResult, Recorder], speech_wav: Path, tmp_path: Path
) -> None:
    result, _ = portrait_result
    frames = _frames(result.path).astype(np.int16)
    jaw = motion_of(speech_wav, tmp_path, len(frames), None).jaw
    quiet, loud = int(np.argmin(jaw)), int(np.argmax(jaw))
    assert jaw[loud] > 10 * max(jaw[quiet], 0.1)
    mouth = (slice(300, 400), slice(160, 320))
    assert np.abs(frames[loud][mouth] - frames[quiet][mouth]).mean() > 4
    left, top, right, bottom = face.label_box((480, 600))
    label = (slice(top, bottom), slice(left, right))
    assert np.abs(frames[loud][label] - frames[quiet][label]).mean() < 1.5
    assert frames[0][label].std() > 20


def test_progress_is_monotonic_and_ends_encoding(
    portrait_result: tuple[VideoResult, Recorder],
) -> None:
    events = portrait_result[1].events
    percents = [percent for percent, _, _ in events]
    stages = [stage for _, stage, _ in events]
    assert percents == sorted(percents)
    assert events[0] == (0.0, Stage.GENERATING, None)
    assert events[-1] == (100.0, Stage.ENCODING, 0.0)
    first_encoding = stages.index(Stage.ENCODING)
    assert set(stages[:first_encoding]) == {Stage.GENERATING}
    assert set(stages[first_encoding:]) == {Stage.ENCODING}


def test_progress_reports_eta_from_the_frame_rate(
    portrait_png: Path, speech_wav: Path, render: Render, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(preview, "PROGRESS_INTERVAL_S", 0.0)
    _, recorder = render(portrait_png, speech_wav)
    generating = [e for e in recorder.events if e[1] is Stage.GENERATING][1:]
    assert len(generating) == 50
    assert [p for p, _, _ in generating] == sorted(p for p, _, _ in generating)
    assert generating[-1][0] == pytest.approx(preview.GENERATING_SHARE)
    etas = [eta for _, _, eta in generating]
    assert all(eta is not None and eta >= 0 for eta in etas)
    assert etas[0] > etas[-1]


def test_progress_is_throttled(
    portrait_png: Path, speech_wav: Path, render: Render, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(preview, "PROGRESS_INTERVAL_S", 3600.0)
    _, recorder = render(portrait_png, speech_wav)
    assert [stage for _, stage, _ in recorder.events] == [
        Stage.GENERATING,
        Stage.ENCODING,
        Stage.ENCODING,
    ]


@pytest.mark.parametrize(
    ("image_size", "resolution", "expected"),
    [
        ((640, 360), Resolution.P720, (1280, 720)),
        ((333, 501), Resolution.P480, (480, 722)),
        ((501, 333), Resolution.P480, (722, 480)),
    ],
)
def test_sizes_follow_the_image_and_resolution(
    image_size: tuple[int, int],
    resolution: Resolution,
    expected: tuple[int, int],
    examples: ModuleType,
    tmp_path: Path,
    render: Render,
) -> None:
    image = examples.make_portrait(tmp_path / "p.png", size=image_size)
    audio = examples.make_speech_wav(tmp_path / "a.wav", seconds=0.5)
    result, _ = render(image, audio, resolution)
    _check_contract(result.path, audio, expected)


def test_720p_portrait(
    portrait_jpeg: Path, examples: ModuleType, tmp_path: Path, render: Render
) -> None:
    audio = examples.make_speech_wav(tmp_path / "a.wav", seconds=0.5)
    result, _ = render(portrait_jpeg, audio, Resolution.P720)
    _check_contract(result.path, audio, (720, 900))


def test_mp3_stereo_audio_is_muxed_back(
    portrait_png: Path, speech_mp3: Path, render: Render
) -> None:
    result, _ = render(portrait_png, speech_mp3)
    info = _check_contract(result.path, speech_mp3, (480, 600))
    assert info.audio_sample_rate == 44100
    with av.open(str(result.path)) as container:
        assert container.streams.audio[0].codec_context.channels == 2


def test_audio_rate_aac_lacks_is_resampled_to_48k(
    portrait_png: Path, examples: ModuleType, tmp_path: Path, render: Render
) -> None:
    audio = examples.make_speech_wav(tmp_path / "a.wav", seconds=0.7, sample_rate=37800)
    result, _ = render(portrait_png, audio)
    assert _check_contract(result.path, audio, (480, 600)).audio_sample_rate == 48000


def test_duration_that_is_not_whole_frames_stays_within_one_frame(
    portrait_png: Path, examples: ModuleType, tmp_path: Path, render: Render
) -> None:
    audio = examples.make_speech_wav(tmp_path / "a.wav", seconds=0.93)
    result, _ = render(portrait_png, audio)
    assert _check_contract(result.path, audio, (480, 600)).frame_count == 23


def test_silence_and_transparency_are_fine(tmp_path: Path, render: Render) -> None:
    image = tmp_path / "clear.png"
    Image.new("RGBA", (200, 240), (255, 0, 0, 0)).save(image)
    audio = tmp_path / "silence.wav"
    with wave.open(str(audio), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(bytes(2 * 4000))
    result, _ = render(image, audio)
    _check_contract(result.path, audio, (480, 576))
    frames = _frames(result.path)
    assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).max() <= 2


def test_exif_rotated_jpeg_is_shown_upright(
    tmp_path: Path, render: Render, speech_wav: Path
) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    image = tmp_path / "rotated.jpg"
    Image.new("RGB", (400, 300), (90, 120, 150)).save(image, format="JPEG", exif=exif.tobytes())
    result, _ = render(image, speech_wav)
    assert (result.width, result.height) == (480, 640)


def test_seed_shifts_the_head_bob_only(speech_wav: Path, tmp_path: Path) -> None:
    plain = motion_of(speech_wav, tmp_path, 50, None)
    seeded = motion_of(speech_wav, tmp_path, 50, 90)
    assert np.array_equal(plain.jaw, seeded.jaw)
    assert not np.array_equal(plain.bob, seeded.bob)


@pytest.mark.parametrize("size", [(480, 600), (854, 480), (720, 1280)])
def test_warp_never_folds_over(size: tuple[int, int]) -> None:
    """With the strongest motion, rows keep their order: a vertical ramp stays sorted."""
    width, height = size
    ramp = np.repeat((np.arange(height) * 255 // (height - 1)).astype(np.uint8)[:, None], width, 1)
    chroma = np.full((height // 2, width // 2), 128, np.uint8)
    base = np.concatenate([ramp.reshape(-1), chroma.reshape(-1), chroma.reshape(-1)])
    rig = face.FaceRig(base.reshape(-1, width), size)
    short = min(size)
    jaw = face.MAX_JAW_DROP * face.FACE_HALF_HEIGHT * short
    for bob in (-1.5 * face.HEAD_BOB * short, 1.5 * face.HEAD_BOB * short):
        luma = face.plane(rig.render([(bob, jaw)]), size, 0).astype(int)
        assert (np.diff(luma, axis=0) >= 0).all()
        assert (luma != ramp).any()


def test_still_motion_renders_the_base_frame(portrait_png: Path) -> None:
    base = face.base_frame(portrait_png, (480, 600))
    assert np.array_equal(face.FaceRig(base, (480, 600)).render([(0.0, 0.0)]), base)


def test_cancel_before_rendering(
    portrait_png: Path, speech_wav: Path, render: Render, tmp_path: Path
) -> None:
    with pytest.raises(CancelledError) as caught:
        render(portrait_png, speech_wav, recorder=Recorder(cancel_after=0))
    assert caught.value.code == "CANCELLED"
    assert not (tmp_path / "work" / "preview.mp4").exists()


def test_cancel_while_rendering_stops_and_cleans_up(
    portrait_png: Path, speech_wav: Path, render: Render, tmp_path: Path
) -> None:
    recorder = Recorder(cancel_after=3)
    with pytest.raises(CancelledError):
        render(portrait_png, speech_wav, recorder=recorder)
    assert recorder.polls == 4
    assert not (tmp_path / "work" / "preview.mp4").exists()
    assert all(stage is Stage.GENERATING for _, stage, _ in recorder.events)


def test_invalid_image_is_refused_before_any_work(
    speech_wav: Path, render: Render, tmp_path: Path
) -> None:
    image = tmp_path / "portrait.png"
    image.write_text("not a picture")
    recorder = Recorder()
    with pytest.raises(InvalidInputError, match="neither PNG nor JPEG"):
        render(image, speech_wav, recorder=recorder)
    assert recorder.events == []
    assert not (tmp_path / "work").exists()


def test_invalid_audio_is_refused(
    portrait_png: Path, speech_wav: Path, render: Render, tmp_path: Path
) -> None:
    audio = tmp_path / "cut.wav"
    audio.write_bytes(speech_wav.read_bytes()[:5000])
    with pytest.raises(InvalidInputError, match="truncated"):
        render(portrait_png, audio)


def test_unreadable_output_is_a_generation_failure(
    portrait_png: Path,
    speech_wav: Path,
    render: Render,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def unreadable(path: Path) -> None:
        raise InvalidInputError("video cannot be read")

    monkeypatch.setattr(preview, "probe_video", unreadable)
    with pytest.raises(EngineError) as caught:
        render(portrait_png, speech_wav)
    assert caught.value.code == "GENERATION_FAILED"
    assert not isinstance(caught.value, InvalidInputError)
    assert not (tmp_path / "work" / "preview.mp4").exists()


def test_output_breaking_the_contract_is_refused_and_removed(
    portrait_png: Path,
    speech_wav: Path,
    render: Render,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(mux, "OUTPUT_FPS", 24)
    with pytest.raises(EngineError, match="frame rate is 24") as caught:
        render(portrait_png, speech_wav)
    assert caught.value.code == "GENERATION_FAILED"
    assert not (tmp_path / "work" / "preview.mp4").exists()


def test_create_engine() -> None:
    engine = create_engine("preview")
    assert isinstance(engine, PreviewEngine)
    assert engine.name == "preview"
    assert engine.quality_unavailable(Quality.FAST) is None  # it serves both qualities
    assert engine.quality_unavailable(Quality.STANDARD) is None


def test_unknown_engine_names_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"'sadtalker'.*valid engines: infinitetalk, preview"):
        create_engine("sadtalker")
