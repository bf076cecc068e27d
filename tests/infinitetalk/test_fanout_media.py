"""A parallel job's media: silences, the cut plan, segment audio and the checked stitch."""

import itertools
import wave
from pathlib import Path

import av
import numpy as np
import pytest

from bench.fanout import write_wav
from bench.sleep_engine import SleepEngine
from infinitetalk.engine import VideoRequest
from infinitetalk.media.audio_pass import prepare_audio
from infinitetalk.media.output import OUTPUT_FPS
from infinitetalk.media.segment_audio import (
    SegmentBounds,
    decode_track,
    plan_track,
    write_segments,
)
from infinitetalk.media.segment_plan import PlannedSegment, plan_segments, target_seconds
from infinitetalk.media.stitch import StitchError, planned_frames, stitch
from infinitetalk.media.voice_activity import Silence, find_silences, levels_db, speech_mask

RATE = 16000
PATTERN = [(3.0, True), (0.6, False), (2.8, True)]  # 6.4 s, one pause at 3.0-3.6 s


def bursts(path: Path, pattern: list[tuple[float, bool]], rate: int = RATE) -> Path:
    """A WAV of tone bursts (True) and silences (False), each lasting its seconds."""
    parts = []
    for seconds, loud in pattern:
        t = np.arange(round(seconds * rate)) / rate
        parts.append(0.3 * np.sin(2 * np.pi * 220 * t) if loud else np.zeros(t.size))
    return write_wav(path, np.round(np.concatenate(parts) * 32767).astype("<i2"), rate)


def render_segments(
    directory: Path, pattern: list[tuple[float, bool]], bounds: SegmentBounds
) -> tuple[Path, list[PlannedSegment], list[Path]]:
    """The track, its plan and each segment's video made by the sleep engine (no sleep)."""
    audio = bursts(directory / "speech.wav", pattern)
    track = decode_track(audio, directory / "decoded")
    segments = plan_track(track, bounds)
    videos = []
    for segment, path in zip(
        segments, write_segments(track, segments, directory / "s"), strict=True
    ):
        result = SleepEngine(0.0).generate(
            VideoRequest(path, path, "x"),
            directory / f"engine-{segment.index}",
            lambda *_: None,
            lambda: False,
        )
        videos.append(result.path)
    return audio, segments, videos


def test_silences_are_found_between_bursts_and_short_gaps_are_speech() -> None:
    hop = 0.01
    levels = levels_db(np.array([0.3] * 100 + [0.0] * 50 + [0.3] * 100 + [0.0] * 10 + [0.3] * 50))
    speech = speech_mask(levels)
    # The 0.5 s pause is a silence, shortened by the 0.1 s hangover; the 0.1 s gap is not.
    assert find_silences(speech, hop_seconds=hop) == [Silence(1.1, 1.5)]
    assert not speech_mask(levels_db(np.zeros(10))).any()


def test_the_target_follows_the_agents_within_bounds() -> None:
    bounds = {"min_seconds": 20.0, "max_seconds": 120.0}
    assert target_seconds(600, agents_seen=8, max_segments=None, **bounds) == 75
    assert target_seconds(600, agents_seen=8, max_segments=4, **bounds) == 120
    assert target_seconds(600, agents_seen=1, max_segments=None, **bounds) == 120
    assert target_seconds(30, agents_seen=8, max_segments=None, **bounds) == 20


def test_cuts_fall_only_in_silences_on_whole_frames_and_frames_add_up() -> None:
    silences = [Silence(float(t), t + 0.5) for t in range(7, 600, 11)]
    segments = plan_segments(
        600.3, silences, min_seconds=20, max_seconds=120, max_segments=None, agents_seen=8
    )
    assert len(segments) == 8
    assert segments[0].start_seconds == 0 and segments[-1].end_seconds == 600.3
    assert sum(s.frames for s in segments) == round(600.3 * OUTPUT_FPS)
    for before, after in itertools.pairwise(segments):
        assert before.end_frame == after.start_frame
        cut = before.end_seconds
        assert cut * OUTPUT_FPS == pytest.approx(round(cut * OUTPUT_FPS))
        assert any(s.start <= cut <= s.end for s in silences)
    assert all(20 <= s.end_seconds - s.start_seconds <= 120 for s in segments)


def test_max_segments_caps_the_plan_and_no_silence_means_a_longer_segment() -> None:
    silences = [Silence(float(t), t + 0.5) for t in range(5, 300, 5)]
    capped = plan_segments(
        300, silences, min_seconds=20, max_seconds=200, max_segments=2, agents_seen=8
    )
    assert len(capped) == 2
    # Speech without a pause from 20 s to 290 s: never cut inside it, run past the maximum.
    sparse = [Silence(20.0, 20.5), Silence(290.0, 290.5)]
    segments = plan_segments(
        300, sparse, min_seconds=5, max_seconds=120, max_segments=None, agents_seen=4
    )
    assert [round(s.end_seconds, 2) for s in segments] == [20.24, 290.24, 300]
    short = plan_segments(
        30, [Silence(15, 16)], min_seconds=20, max_seconds=120, max_segments=None, agents_seen=4
    )
    assert [(s.start_seconds, s.end_seconds) for s in short] == [(0, 30)]


def test_segment_audio_lasts_exactly_its_frames(tmp_path: Path) -> None:
    audio = bursts(
        tmp_path / "a.wav", [(3.0, True), (0.6, False), (3.0, True), (0.6, False), (2.3, True)]
    )
    track = decode_track(audio, tmp_path / "decoded")
    assert track.info.duration_seconds == pytest.approx(9.5)
    segments = plan_track(track, SegmentBounds(2.0, 5.0, None, 3))
    cuts = [s.end_seconds for s in segments[:-1]]
    # The middles of the pauses after the hangover (3.1-3.6 s, 6.7-7.2 s), on whole frames.
    assert cuts == [3.36, 6.96]
    for segment, path in zip(
        segments, write_segments(track, segments, tmp_path / "s"), strict=True
    ):
        with wave.open(str(path)) as wav:
            assert wav.getnframes() == segment.frames * RATE // OUTPUT_FPS


@pytest.fixture(scope="module")
def segmented(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A 6.4 s track cut in two."""
    directory = tmp_path_factory.mktemp("stitch")
    audio, segments, videos = render_segments(directory, PATTERN, SegmentBounds(2.0, 4.0, None, 2))
    aac = prepare_audio(audio, directory / "prepared").aac_path
    spans = [(s.start_seconds, s.end_seconds) for s in segments]
    return {"videos": videos, "spans": spans, "aac": aac, "seconds": 6.4}


@pytest.mark.parametrize("crossfade", [0, 4])
def test_stitched_video_has_every_frame_once_and_seams_in_sync(
    segmented: dict, tmp_path: Path, crossfade: int
) -> None:
    out = tmp_path / "out.mp4"
    result = stitch(
        segmented["videos"],
        segmented["spans"],
        segmented["aac"],
        segmented["seconds"],
        out,
        crossfade_frames=crossfade,
    )
    assert result.copied is (crossfade == 0)
    assert result.info.frame_count == 160 and result.info.faststart
    (seam,) = result.seams
    assert seam.frame == 84 and abs(seam.offset_seconds) <= 1 / OUTPUT_FPS
    with av.open(str(out)) as container:
        frames = list(container.decode(container.streams.video[0]))
    assert len({f.pts for f in frames}) == len(frames) == 160
    # The sleep engine's frames step in level from 16 at each segment's first frame.
    levels = [int(f.to_ndarray(format="rgb24")[32, 32, 0]) for f in frames[82:86]]
    if crossfade == 0:
        assert levels == pytest.approx([98, 99, 16, 17], abs=3)
    else:  # faded across the seam: no jump of 80 levels from one frame to the next
        assert max(abs(a - b) for a, b in itertools.pairwise(levels)) < 40


def test_a_segment_with_the_wrong_frame_count_fails_the_stitch(
    segmented: dict, tmp_path: Path
) -> None:
    spans = list(segmented["spans"])
    spans[0] = (0.0, spans[0][1] + 0.08)  # planned two frames longer than it was made
    with pytest.raises(StitchError, match=r"segment 0 .* has 84 frames, not 86") as caught:
        stitch(
            segmented["videos"], spans, segmented["aac"], segmented["seconds"], tmp_path / "out.mp4"
        )
    assert not caught.value.retryable
    assert planned_frames(spans)[0] == 86
    assert not (tmp_path / "out.mp4").exists()
