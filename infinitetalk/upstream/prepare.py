"""Turn a job's inputs into what upstream can take, and plan the run (both modes share it).

- The portrait becomes an upright RGB PNG: upstream ignores EXIF rotation and drops alpha.
- A video to dub becomes upstream's `cond_video` at 25 fps for the audio's length
  (`video_input.normalize_video`): upstream takes each chunk's reference frame by index.
- Two speakers become upstream's multi input: `person1`/`person2` tracks (the agent's
  `speaker_tracks`: padded to one length for `para`), `audio_type` and one `bbox` each.
- Audio too short for one chunk (upstream asserts on an embedding of 81 frames or fewer,
  i.e. under 3.28 s) is handed over padded with silence, a copy the audio's one pass
  (`infinitetalk.media.audio_pass`) made; the video is trimmed back afterwards.
- The plan fixes the seed (random when the job has none, so logs can reproduce it), the
  frames and chunks upstream will make, the output size, the sampling of the job's
  quality, and the job's time limit.
"""

import math
import random
import wave
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps

from contracts import Resolution, SpeakerMode
from infinitetalk.engine import PreparedAudio, SpeakerTracks, VideoRequest
from infinitetalk.media.audio_pass import PADDED_AUDIO_SECONDS, prepare_audio
from infinitetalk.media.output import OUTPUT_FPS
from infinitetalk.media.probe import probe_image
from infinitetalk.media.video_input import normalize_video
from infinitetalk.settings import InfiniteTalkSettings, Sampling
from infinitetalk.upstream import pinned

MAX_SEED = 2**32 - 1
_GREY = (128, 128, 128, 255)


@dataclass(frozen=True)
class SpeakerPlan:
    """Upstream's multi-person input for a two-speaker job."""

    person1: Path
    person2: Path
    audio_type: str
    """`add` (sequential) or `para` (simultaneous)."""
    bbox: dict[str, list[int]]
    """`{"person1": [...], "person2": [...]}`, row-first (`pinned.upstream_bbox`)."""


@dataclass(frozen=True)
class JobPlan:
    image_path: Path
    """The upright RGB PNG handed to upstream."""
    audio_path: Path
    """What upstream embeds: the job's audio, or a padded copy."""
    source_audio: Path
    """The job's own audio, whose one pass made `audio`."""
    audio: PreparedAudio
    """The facts and files of that pass: the result's AAC track among them."""
    prompt: str
    resolution: Resolution
    size: tuple[int, int]
    """(width, height) of upstream's video for this portrait and resolution."""
    seed: int
    frames: int
    """Frames of audio embedding upstream will see (of the padded audio, if padded)."""
    chunks: int
    max_frame_num: int
    """`--max_frame_num`: above `frames`, so upstream's 1000-frame default never cuts."""
    target_frames: int
    """Frames of the finished video: the job's audio at 25 fps."""
    timeout_seconds: float
    sampling: Sampling
    """Steps, guidance and LoRA of the job's quality."""
    cond_video: Path | None = None
    """Dubbing: the video upstream reads as `cond_video`; None: `image_path` is it."""
    speakers: SpeakerPlan | None = None
    """Two speakers: the multi input (and the multi weights)."""

    @property
    def cond_path(self) -> Path:
        """What upstream's `cond_video` names: the video to dub, or the portrait."""
        return self.cond_video or self.image_path

    @property
    def audio_seconds(self) -> float:
        return self.audio.info.duration_seconds

    @property
    def padded(self) -> bool:
        return self.audio_path != self.source_audio


def plan_job(
    request: VideoRequest,
    workdir: Path,
    settings: InfiniteTalkSettings,
    *,
    rng: random.Random | None = None,
) -> JobPlan:
    """Probe and prepare the inputs under `workdir`; raises InvalidInputError for bad media.

    The audio's pass comes with the request from the agent; only a request without one
    (the engine used directly) has it made here. Every path in the plan is absolute:
    upstream runs in another working directory.
    """
    image = probe_image(request.image_path)
    workdir = workdir.resolve()
    audio = request.audio or prepare_audio(request.audio_path, workdir / "audio")
    workdir.mkdir(parents=True, exist_ok=True)
    portrait = upright_png(request.image_path, workdir / "portrait.png")
    source_audio = request.audio_path.resolve()
    model_audio = source_audio
    seconds = audio.info.duration_seconds
    model_seconds = seconds
    speakers = None
    if request.speakers is not None:
        speakers = speaker_plan(request.speakers)
        model_audio = speakers.person1
        model_seconds = _model_seconds(request.speakers)
    elif audio.padded_path is not None:
        model_audio = audio.padded_path
        model_seconds = PADDED_AUDIO_SECONDS
    frames = pinned.embedding_frames(model_seconds)
    target_frames = max(1, round(seconds * OUTPUT_FPS))
    seed = request.seed if request.seed is not None else (rng or random).randint(0, MAX_SEED)
    cond_video = None
    if request.video_path is not None:
        cond_video = normalize_video(request.video_path, workdir / "cond_video.mp4", target_frames)
    return JobPlan(
        image_path=portrait,
        audio_path=model_audio,
        source_audio=source_audio,
        audio=audio,
        prompt=request.prompt,
        resolution=request.resolution,
        size=pinned.output_size(image.width, image.height, request.resolution),
        seed=seed,
        frames=frames,
        chunks=pinned.chunk_count(frames),
        max_frame_num=math.ceil(model_seconds * OUTPUT_FPS) + 1,
        target_frames=target_frames,
        timeout_seconds=settings.job_timeout(seconds),
        sampling=settings.sampling(request.quality),
        cond_video=cond_video,
        speakers=speakers,
    )


def speaker_plan(tracks: SpeakerTracks) -> SpeakerPlan:
    first, second = tracks.assignment.boxes
    return SpeakerPlan(
        person1=tracks.model_paths[0].resolve(),
        person2=tracks.model_paths[1].resolve(),
        audio_type=pinned.AUDIO_TYPE[tracks.mode.value],
        bbox={"person1": pinned.upstream_bbox(first), "person2": pinned.upstream_bbox(second)},
    )


def _model_seconds(tracks: SpeakerTracks) -> float:
    """How long upstream's embeddings run: both tracks for `add`, one (as long as the
    other) for `para`."""
    lengths = []
    for path in tracks.model_paths:
        with wave.open(str(path)) as track:
            lengths.append(track.getnframes() / track.getframerate())
    return sum(lengths) if tracks.mode is SpeakerMode.SEQUENTIAL else max(lengths)


def upright_png(source: Path, destination: Path) -> Path:
    """The portrait as displayed (EXIF rotation applied), on grey where it was transparent."""
    with Image.open(source) as img:
        upright = ImageOps.exif_transpose(img).convert("RGBA")
    flat = Image.alpha_composite(Image.new("RGBA", upright.size, _GREY), upright).convert("RGB")
    flat.save(destination, format="PNG")
    return destination
