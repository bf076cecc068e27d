"""The agent's media for dubbing and two speakers: the video probe and its 25 fps reading,
the face detector on real faces, both speakers' audio layout, and the preview rendering
them."""

from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from contracts import BoxSource, Capability, FailureCode, Resolution, SpeakerMode
from infinitetalk.engine import InvalidInputError, VideoRequest
from infinitetalk.media.audio_pass import PAD_RATE, PADDED_AUDIO_SECONDS
from infinitetalk.media.faces import find_speakers, halves
from infinitetalk.media.speaker_tracks import prepare_speakers
from infinitetalk.media.video_input import (
    frames_at_output_rate,
    normalize_video,
    probe_video_input,
)
from infinitetalk.preview.engine import PreviewEngine
from tests.conftest import FACE, mp4_bytes, two_faces_png, wav_bytes


def two_faces(path: Path, size: tuple[int, int] = (480, 240), side: int = 110) -> Path:
    path.write_bytes(two_faces_png(size, side))
    return path


def luma(frame: Image.Image) -> float:
    return float(np.asarray(frame.convert("L"))[:8, :8].mean())


def test_the_first_frame_is_kept_and_the_video_measured(tmp_path: Path) -> None:
    video = tmp_path / "in.webm"
    video.write_bytes(mp4_bytes(1.0, size=(96, 120), container="webm"))
    info = probe_video_input(video, tmp_path / "first.png")
    assert (info.width, info.height) == (96, 120)
    assert info.seconds == pytest.approx(1.0, abs=0.05)
    with Image.open(tmp_path / "first.png") as first:
        assert first.size == (96, 120)


@pytest.mark.parametrize(
    ("content", "limits", "code"),
    [
        (mp4_bytes(0.2)[:200] + bytes(4000), {}, FailureCode.VIDEO_UNDECODABLE),
        (mp4_bytes(2.0), {"max_seconds": 1.0}, FailureCode.VIDEO_TOO_LONG),
        (mp4_bytes(0.2), {"max_pixels": 96 * 120 - 1}, FailureCode.IMAGE_TOO_LARGE),
    ],
)
def test_videos_the_agent_refuses(
    tmp_path: Path, content: bytes, limits: dict[str, float], code: FailureCode
) -> None:
    video = tmp_path / "in.mp4"
    video.write_bytes(content)
    with pytest.raises(InvalidInputError) as refused:
        probe_video_input(video, tmp_path / "first.png", **limits)  # type: ignore[arg-type]
    assert refused.value.code == code.value


def test_frames_follow_the_output_clock_and_hold_the_last(tmp_path: Path) -> None:
    video = tmp_path / "in.mp4"
    video.write_bytes(mp4_bytes(1.0, fps=10))  # 10 frames, each shown 2.5 output frames
    frames = list(frames_at_output_rate(video, 50))
    levels = [luma(frame) for frame in frames]
    assert len(frames) == 50
    assert levels == sorted(levels)  # never back in time
    assert len(set(np.round(levels[:25]))) == 10  # every source frame shown in the first second
    assert len(set(np.round(levels[24:]))) == 1  # then the last one, held
    assert len(list(frames_at_output_rate(video, 5))) == 5  # a longer video is cut


def test_upstreams_copy_is_25_fps_for_the_audios_length(tmp_path: Path) -> None:
    video = tmp_path / "in.mp4"
    video.write_bytes(mp4_bytes(1.0, size=(96, 120), fps=30))
    normalized = normalize_video(video, tmp_path / "cond.mp4", 40)
    with av.open(str(normalized)) as container:
        stream = container.streams.video[0]
        assert stream.average_rate == 25
        assert (stream.codec_context.width, stream.codec_context.height) == (96, 120)
        assert sum(1 for _ in container.decode(stream)) == 40


def test_two_real_faces_are_found_left_to_right(tmp_path: Path) -> None:
    found = find_speakers(two_faces(tmp_path / "two.png"))
    assert found.source is BoxSource.DETECTED
    (left, right) = found.boxes
    assert left[2] <= 240 <= right[0]  # one face per half
    for (x1, y1, x2, y2), centre in zip(found.boxes, (120, 360), strict=True):
        assert x1 < centre < x2 and y1 < 120 < y2


@pytest.mark.parametrize("faces", [0, 1])
def test_without_exactly_two_faces_the_halves_speak(tmp_path: Path, faces: int) -> None:
    scene = Image.new("RGB", (320, 160), (90, 110, 130))
    if faces:
        with Image.open(FACE) as face:
            scene.paste(face.convert("RGB").resize((100, 100)), (30, 30))
    scene.save(tmp_path / "scene.png")
    assert find_speakers(tmp_path / "scene.png") == halves(320, 160)
    assert halves(320, 160).boxes == ((0, 0, 160, 160), (160, 0, 320, 160))


@pytest.mark.parametrize(
    ("mode", "mixed_seconds"), [(SpeakerMode.SEQUENTIAL, 3.6), (SpeakerMode.SIMULTANEOUS, 2.4)]
)
def test_two_tracks_are_laid_out_and_mixed(
    tmp_path: Path, mode: SpeakerMode, mixed_seconds: float
) -> None:
    first, second = tmp_path / "a.wav", tmp_path / "b.wav"
    first.write_bytes(wav_bytes(2.4, tone_hz=220))  # 60 video frames
    second.write_bytes(wav_bytes(1.2, tone_hz=330))  # 30: together past one upstream chunk
    _, prepared, tracks = prepare_speakers(first, second, mode, halves(320, 160), tmp_path / "out")
    assert prepared.info.duration_seconds == pytest.approx(mixed_seconds, abs=0.01)
    one, two = (np.fromfile(str(path)) for path in tracks.loudness_paths)
    assert one.size == two.size == round(mixed_seconds * 25)
    if mode is SpeakerMode.SEQUENTIAL:
        assert one[:60].min() > 0 and one[60:].max() == 0  # the first speaks, then is silent
        assert two[:60].max() == 0 and two[60:].min() > 0
        lengths = [_wav_samples(path) for path in tracks.model_paths]
        assert lengths == [2.4 * PAD_RATE, 1.2 * PAD_RATE]  # upstream's `add` joins them
    else:
        assert one.min() > 0 and two[:30].min() > 0 and two[30:].max() == 0
        lengths = [_wav_samples(path) for path in tracks.model_paths]
        assert lengths[0] == lengths[1] >= PADDED_AUDIO_SECONDS * PAD_RATE  # never unequal


def test_short_tracks_still_reach_one_upstream_chunk(tmp_path: Path) -> None:
    first, second = tmp_path / "a.wav", tmp_path / "b.wav"
    first.write_bytes(wav_bytes(0.5, tone_hz=220))
    second.write_bytes(wav_bytes(0.5, tone_hz=330))
    _, _, tracks = prepare_speakers(
        first, second, SpeakerMode.SEQUENTIAL, halves(320, 160), tmp_path / "out"
    )
    assert sum(_wav_samples(path) for path in tracks.model_paths) >= (
        PADDED_AUDIO_SECONDS * PAD_RATE
    )


def test_a_track_over_the_limit_is_refused(tmp_path: Path) -> None:
    first, second = tmp_path / "a.wav", tmp_path / "b.wav"
    first.write_bytes(wav_bytes(0.4))
    second.write_bytes(wav_bytes(1.0))
    with pytest.raises(InvalidInputError, match=r"^audio2 is longer than the limit") as refused:
        prepare_speakers(
            first, second, SpeakerMode.SEQUENTIAL, halves(2, 2), tmp_path / "out", max_seconds=0.5
        )
    assert refused.value.code == FailureCode.AUDIO_TOO_LONG.value


def _wav_samples(path: Path) -> int:
    import wave

    with wave.open(str(path)) as wav:
        return wav.getnframes()


@pytest.mark.parametrize(("video_seconds", "audio_seconds"), [(1.0, 2.0), (2.0, 1.0)])
def test_the_preview_dubs_a_video_for_the_audios_length(
    tmp_path: Path, video_seconds: float, audio_seconds: float
) -> None:
    video, audio = tmp_path / "in.mp4", tmp_path / "a.wav"
    video.write_bytes(mp4_bytes(video_seconds, size=(96, 120)))
    audio.write_bytes(wav_bytes(audio_seconds, tone_hz=220))
    probe_video_input(video, tmp_path / "first.png")
    request = VideoRequest(tmp_path / "first.png", audio, "hi", Resolution.P480, video_path=video)
    result = PreviewEngine().generate(request, tmp_path / "run", lambda *a: None, lambda: False)
    assert result.duration_seconds == pytest.approx(audio_seconds)
    with av.open(str(result.path)) as container:
        levels = [luma(frame.to_image()) for frame in container.decode(video=0)]
    assert len(levels) == round(audio_seconds * 25)
    assert levels[0] < levels[min(len(levels), 25) - 1]  # the source frames play
    if audio_seconds > video_seconds:
        assert max(levels[25:]) - min(levels[25:]) < 1.0  # the last frame, held


def test_the_preview_moves_each_speaker_by_their_own_track(tmp_path: Path) -> None:
    picture = two_faces(tmp_path / "two.png", (320, 160), 70)
    first, second = tmp_path / "a.wav", tmp_path / "b.wav"
    first.write_bytes(wav_bytes(1.0, tone_hz=220))
    second.write_bytes(wav_bytes(1.0, tone_hz=330))
    assignment = find_speakers(picture)
    mixed, prepared, tracks = prepare_speakers(
        first, second, SpeakerMode.SEQUENTIAL, assignment, tmp_path / "audio"
    )
    request = VideoRequest(picture, mixed, "hi", Resolution.P480, audio=prepared, speakers=tracks)
    result = PreviewEngine().generate(request, tmp_path / "run", lambda *a: None, lambda: False)
    assert result.duration_seconds == pytest.approx(2.0)
    with av.open(str(result.path)) as container:
        frames = [
            np.asarray(f.to_image().convert("L"), dtype=np.float64)
            for f in container.decode(video=0)
        ]
    width = frames[0].shape[1]
    moved = [
        [float(np.abs(frame - frames[0])[:, half].mean()) for frame in frames]
        for half in (slice(0, width // 2), slice(width // 2, width))
    ]
    left_first, right_first = max(moved[0][:25]), max(moved[1][:25])
    assert left_first > 2 * right_first  # the left speaker talks first...
    assert max(moved[1][25:]) > 2 * right_first  # ...then the right one


def test_the_preview_makes_every_kind_of_job() -> None:
    assert PreviewEngine().capabilities() == frozenset(Capability)
