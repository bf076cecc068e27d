"""The engine's newer inputs with real weights: a video to dub, and two speakers in both
modes, each as the agent sends it, and the MP4s saved to look at.

Dubbing: a short synthetic video (the example portrait drifting a few pixels) whose first
frame is probed as the agent does (`probe_video_input`), dubbed with speech longer than
it, so upstream's `cond_video` runs out and the last frame is held. Two speakers: a
composed two-person picture (bench/faces.py's scene builder), boxes from `find_speakers`
(detected, or the halves), the two tracks laid out by `prepare_speakers`, once one after
the other and once together, on the multi weights. `bench/gpu.py --inputs-dir` runs it
with the engine it has loaded, before its measured runs, so `scripts/device_check.sh`
brings the videos back from a lent GPU machine.
"""

import math
import shutil
import time
from pathlib import Path
from typing import Literal

import av
from PIL import Image
from pydantic import BaseModel

from bench.faces import compose, render
from bench.fanout import speech_with_pauses, write_wav
from contracts import Quality, Resolution, SpeakerAssignment, SpeakerMode
from infinitetalk.engine import Engine, EngineError, VideoRequest
from infinitetalk.media.audio_pass import prepare_audio
from infinitetalk.media.faces import detector_available, find_speakers, halves
from infinitetalk.media.mux import MP4_OPTIONS, add_h264_stream
from infinitetalk.media.output import FRAME_SECONDS, OUTPUT_FPS
from infinitetalk.media.probe import probe_video
from infinitetalk.media.speaker_tracks import prepare_speakers
from infinitetalk.media.video_input import NORMALIZED_OPTIONS, probe_video_input

SOURCE_VIDEO_SECONDS = 2.0
DUBBING_AUDIO_SECONDS = 5.0
"""Three seconds past the video's end: the held-last-frame path, and a second chunk."""
DRIFT_PIXELS = 6
"""How far the source video's picture sways, so its frames differ."""
SPEAKER_SECONDS = (3.0, 2.0)
"""Each speaker's track: 5 s of video one after the other, 3 s together."""
SPEECH_SEEDS = (2, 4, 5)
"""`speech_with_pauses` seeds of the dubbing track and of each speaker's: three voices."""
SCENE_SIZE = (960, 540)
SCENE_SEED = 2
"""bench/faces.py's first two-face scene of this seed: a face about the middle of each half,
large ones (the photos 287 and 352 px high), both detected."""

InputKind = Literal["dubbing", "two_speakers"]


class InputJob(BaseModel):
    kind: InputKind
    mode: SpeakerMode | None = None
    """Two speakers: how the tracks are laid out."""
    status: Literal["ok", "failed", "skipped"]
    audio_seconds: float | None = None
    """The job's speech (for two speakers, the mix): what the video must last."""
    wall_seconds: float | None = None
    """From request to verified MP4."""
    video_seconds: float | None = None
    frames: int | None = None
    width: int | None = None
    height: int | None = None
    video: str | None = None
    error: str | None = None


class InputsReport(BaseModel):
    status: Literal["ok", "failed"]
    """`failed` when a job failed; skipped two-speaker jobs (no multi weights) are not."""
    quality: Quality
    resolution: Resolution
    source_video: str
    source_video_seconds: float
    speakers_picture: str
    speakers: SpeakerAssignment | None = None
    """The boxes the two-speaker jobs got, and whether they were detected or the halves."""
    two_speakers_unavailable: str | None = None
    jobs: list[InputJob]

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def inputs_run(
    engine: Engine,
    quality: Quality,
    resolution: Resolution,
    prompt: str,
    seed: int,
    portrait: Path,
    two_speakers_unavailable: str | None,
    workdir: Path,
    out_dir: Path,
) -> InputsReport:
    """A dubbing job, then two-speaker jobs (`sequential`, `simultaneous`) unless
    `two_speakers_unavailable` says why not; videos go to `out_dir`, failures are results."""
    out_dir.mkdir(parents=True, exist_ok=True)
    workdir.mkdir(parents=True, exist_ok=True)
    source = make_source_video(portrait, out_dir / "dubbing-source.mp4")
    first_frame = workdir / "first.png"
    probe_video_input(source, first_frame)
    speech = write_wav(
        workdir / "dubbing.wav", speech_with_pauses(DUBBING_AUDIO_SECONDS, seed=SPEECH_SEEDS[0])
    )
    prepared = prepare_audio(speech, workdir / "dubbing-audio")
    dubbing = VideoRequest(
        first_frame,
        speech,
        prompt,
        resolution,
        seed=seed,
        quality=quality,
        audio=prepared,
        video_path=source,
    )
    jobs = [
        _run_job(engine, dubbing, "dubbing", None, workdir / "dubbing", out_dir / "dubbing.mp4")
    ]
    picture = render(
        compose(SCENE_SEED, 1, 0, [SCENE_SIZE])[0], out_dir / "two-speakers.jpg", SCENE_SEED
    )
    assignment: SpeakerAssignment | None = None
    if two_speakers_unavailable is None:
        assignment = find_speakers(picture) if detector_available() else halves(*SCENE_SIZE)
        jobs += _two_speaker_jobs(
            engine, quality, resolution, prompt, seed, picture, assignment, workdir, out_dir
        )
    else:
        jobs += [
            InputJob(
                kind="two_speakers", mode=mode, status="skipped", error=two_speakers_unavailable
            )
            for mode in SpeakerMode
        ]
    return InputsReport(
        status="failed" if any(job.status == "failed" for job in jobs) else "ok",
        quality=quality,
        resolution=resolution,
        source_video=str(source),
        source_video_seconds=SOURCE_VIDEO_SECONDS,
        speakers_picture=str(picture),
        speakers=assignment,
        two_speakers_unavailable=two_speakers_unavailable,
        jobs=jobs,
    )


def _two_speaker_jobs(
    engine: Engine,
    quality: Quality,
    resolution: Resolution,
    prompt: str,
    seed: int,
    picture: Path,
    assignment: SpeakerAssignment,
    workdir: Path,
    out_dir: Path,
) -> list[InputJob]:
    """The same two tracks and boxes, laid out one after the other, then together."""
    tracks = [
        write_wav(workdir / f"speaker{i}.wav", speech_with_pauses(seconds, seed=voice))
        for i, (seconds, voice) in enumerate(
            zip(SPEAKER_SECONDS, SPEECH_SEEDS[1:], strict=True), start=1
        )
    ]
    jobs = []
    for mode in SpeakerMode:
        mixed, mix, speakers = prepare_speakers(
            tracks[0], tracks[1], mode, assignment, workdir / f"{mode.value}-audio"
        )
        request = VideoRequest(
            picture,
            mixed,
            prompt,
            resolution,
            seed=seed,
            quality=quality,
            audio=mix,
            speakers=speakers,
        )
        saved = out_dir / f"two-speakers-{mode.value}.mp4"
        jobs.append(_run_job(engine, request, "two_speakers", mode, workdir / mode.value, saved))
    return jobs


def make_source_video(portrait: Path, path: Path) -> Path:
    """`SOURCE_VIDEO_SECONDS` of the portrait swaying sideways, as 25 fps H.264."""
    with Image.open(portrait) as image:
        still = image.convert("RGB")
    size = (still.width - still.width % 2, still.height - still.height % 2)
    with av.open(str(path), "w", format="mp4", options=MP4_OPTIONS) as container:
        stream = add_h264_stream(container, size, NORMALIZED_OPTIONS)
        for index in range(round(SOURCE_VIDEO_SECONDS * OUTPUT_FPS)):
            shift = DRIFT_PIXELS * math.sin(2 * math.pi * index / OUTPUT_FPS)
            moved = still.transform(size, Image.Transform.AFFINE, (1, 0, shift, 0, 1, 0))
            frame = av.VideoFrame.from_image(moved).reformat(format="yuv420p")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def _run_job(
    engine: Engine,
    request: VideoRequest,
    kind: InputKind,
    mode: SpeakerMode | None,
    workdir: Path,
    saved: Path,
) -> InputJob:
    """One job; its MP4 copied to `saved` and checked to last as long as its audio."""
    assert request.audio is not None
    audio_seconds = request.audio.info.duration_seconds
    job = InputJob(kind=kind, mode=mode, status="failed", audio_seconds=round(audio_seconds, 3))
    workdir.mkdir(parents=True)
    started = time.monotonic()
    try:
        video = engine.generate(request, workdir, lambda *_: None, lambda: False)
    except EngineError as exc:
        return job.model_copy(
            update={
                "wall_seconds": round(time.monotonic() - started, 2),
                "error": f"{exc.code}: {exc.message}",
            }
        )
    wall = time.monotonic() - started
    shutil.copyfile(video.path, saved)
    info = probe_video(saved)
    error = None
    if abs(info.duration_seconds - audio_seconds) > FRAME_SECONDS + 1e-6:
        error = (
            f"{info.frame_count} frames ({info.duration_seconds:.3f} s) for "
            f"{audio_seconds:.3f} s of audio"
        )
    return job.model_copy(
        update={
            "status": "failed" if error else "ok",
            "wall_seconds": round(wall, 2),
            "video_seconds": round(info.duration_seconds, 3),
            "frames": info.frame_count,
            "width": info.width,
            "height": info.height,
            "video": str(saved),
            "error": error,
        }
    )
