"""A parallel job's seams with real weights: two segments through the engine, stitched, and
the frames on both sides of each seam saved as PNGs to look at.

The path is the agents': the planner's decode and cut at a pause (`segment_audio`), each
segment's audio through the engine as its own job (the same portrait, prompt and seed),
the planner's AAC track, and the stitch with its checks (`stitch`). `bench/gpu.py
--seams-dir` runs it with the engine it has loaded, before its measured runs, so
`scripts/device_check.sh` brings the PNGs back from a lent GPU machine.
"""

import time
from pathlib import Path
from typing import Literal

import av
from pydantic import BaseModel

from bench.fanout import speech_with_pauses, write_wav
from contracts import Quality, Resolution
from infinitetalk.engine import Engine, EngineError, VideoRequest
from infinitetalk.media import segment_audio
from infinitetalk.media.audio_pass import encode_aac, prepare_audio
from infinitetalk.media.stitch import stitch

SEAM_AUDIO_SECONDS = 10.0
SEAM_SPEECH_SEED = 1
"""Ten seconds of synthetic speech whose pauses give the planner a cut near the middle."""


class SegmentRun(BaseModel):
    index: int
    start_seconds: float
    end_seconds: float
    wall_seconds: float


class SeamShot(BaseModel):
    index: int
    frame: int
    """The next segment's first frame in the stitched video."""
    planned_seconds: float
    offset_seconds: float
    before_png: str
    after_png: str


class SeamReport(BaseModel):
    status: Literal["ok", "failed"]
    quality: Quality
    resolution: Resolution
    audio_seconds: float
    segments: list[SegmentRun] = []
    stitch_seconds: float | None = None
    stream_copy: bool | None = None
    seams: list[SeamShot] = []
    video: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def seam_run(
    engine: Engine,
    quality: Quality,
    resolution: Resolution,
    portrait: Path,
    prompt: str,
    seed: int,
    workdir: Path,
    out_dir: Path,
) -> SeamReport:
    """Two segments, stitched into `out_dir/stitched.mp4`, with `seam-<i>-before.png` and
    `seam-<i>-after.png` beside it; an engine or stitch failure is a result."""
    report = SeamReport(
        status="failed", quality=quality, resolution=resolution, audio_seconds=SEAM_AUDIO_SECONDS
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    workdir.mkdir(parents=True, exist_ok=True)
    audio = write_wav(
        workdir / "speech.wav", speech_with_pauses(SEAM_AUDIO_SECONDS, seed=SEAM_SPEECH_SEED)
    )
    track = segment_audio.decode_track(audio, workdir / "plan")
    bounds = segment_audio.SegmentBounds(SEAM_AUDIO_SECONDS / 4, SEAM_AUDIO_SECONDS * 3 / 4, 2, 2)
    planned = segment_audio.plan_track(track, bounds)
    if len(planned) != 2:
        return report.model_copy(update={"error": f"the plan has {len(planned)} segment(s)"})
    paths = segment_audio.write_segments(track, planned, workdir / "segments")
    videos, runs = [], []
    try:
        for segment, path in zip(planned, paths, strict=True):
            started = time.monotonic()
            prepared = prepare_audio(path, workdir / f"prepared-{segment.index}")
            request = VideoRequest(
                portrait, path, prompt, resolution, seed=seed, quality=quality, audio=prepared
            )
            engine_dir = workdir / f"engine-{segment.index}"
            engine_dir.mkdir()
            video = engine.generate(request, engine_dir, lambda *_: None, lambda: False)
            videos.append(video.path)
            runs.append(
                SegmentRun(
                    index=segment.index,
                    start_seconds=segment.start_seconds,
                    end_seconds=segment.end_seconds,
                    wall_seconds=round(time.monotonic() - started, 2),
                )
            )
        started = time.monotonic()
        output = out_dir / "stitched.mp4"
        stitched = stitch(
            videos,
            [(s.start_seconds, s.end_seconds) for s in planned],
            encode_aac(audio, workdir / "track.m4a"),
            track.info.duration_seconds,
            output,
        )
    except EngineError as exc:
        return report.model_copy(update={"segments": runs, "error": f"{exc.code}: {exc.message}"})
    shots = save_seam_frames(output, [seam.frame for seam in stitched.seams], out_dir)
    return report.model_copy(
        update={
            "status": "ok",
            "segments": runs,
            "stitch_seconds": round(time.monotonic() - started, 2),
            "stream_copy": stitched.copied,
            "video": str(output),
            "seams": [
                SeamShot(
                    index=seam.index,
                    frame=seam.frame,
                    planned_seconds=seam.planned_seconds,
                    offset_seconds=round(seam.offset_seconds, 4),
                    before_png=str(before),
                    after_png=str(after),
                )
                for seam, (before, after) in zip(stitched.seams, shots, strict=True)
            ],
        }
    )


def save_seam_frames(video: Path, seams: list[int], out_dir: Path) -> list[tuple[Path, Path]]:
    """The last frame before and the first frame after each seam, as PNGs."""
    wanted = {frame: index for index, seam in enumerate(seams) for frame in (seam - 1, seam)}
    images: dict[int, Path] = {}
    with av.open(str(video)) as container:
        for position, frame in enumerate(container.decode(container.streams.video[0])):
            if position in wanted:
                side = "before" if position + 1 in seams else "after"
                path = out_dir / f"seam-{wanted[position]}-{side}.png"
                frame.to_image().save(path)
                images[position] = path
    return [(images[seam - 1], images[seam]) for seam in seams]
