"""Turn a job's inputs into what upstream can take, and plan the run (both modes share it).

- The portrait becomes an upright RGB PNG: upstream ignores EXIF rotation and drops alpha.
- Audio too short for one chunk (upstream asserts on an embedding of 81 frames or fewer,
  i.e. under 3.28 s) is padded with silence; the video is trimmed back afterwards.
- The plan fixes the seed (random when the job has none, so logs can reproduce it), the
  frames and chunks upstream will make, the output size, the sampling of the job's
  quality, and the job's time limit.
"""

import math
import random
import wave
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageOps

from contracts import Resolution
from infinitetalk.engine import VideoRequest
from infinitetalk.media.output import OUTPUT_FPS
from infinitetalk.media.probe import AudioInfo, probe_audio, probe_image
from infinitetalk.settings import InfiniteTalkSettings, Sampling
from infinitetalk.upstream import pinned

PAD_MARGIN_FRAMES = 5
"""Resampling to 16 kHz may lose a frame; stay clear of upstream's assert."""
PADDED_AUDIO_SECONDS = (pinned.MIN_EMBEDDING_FRAMES + PAD_MARGIN_FRAMES) / OUTPUT_FPS
"""3.48 s: shorter audio is padded with silence to this length."""
PAD_RATE = 16000
"""Upstream resamples to 16 kHz mono before embedding, so the padded copy is made so."""
MAX_SEED = 2**32 - 1
_GREY = (128, 128, 128, 255)


@dataclass(frozen=True)
class JobPlan:
    image_path: Path
    """The upright RGB PNG handed to upstream."""
    audio_path: Path
    """What upstream embeds: the job's audio, or a padded copy."""
    source_audio: Path
    """The job's own audio, muxed into the result."""
    audio: AudioInfo
    """What probing `source_audio` found: it is decoded for that once per job."""
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

    @property
    def audio_seconds(self) -> float:
        return self.audio.duration_seconds

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

    Every path in the plan is absolute: upstream runs in another working directory.
    """
    image = probe_image(request.image_path)
    audio = probe_audio(request.audio_path)
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    portrait = upright_png(request.image_path, workdir / "portrait.png")
    source_audio = request.audio_path.resolve()
    model_audio = source_audio
    model_seconds = audio.duration_seconds
    if model_seconds < PADDED_AUDIO_SECONDS:
        model_audio = pad_audio(source_audio, workdir / "padded.wav", PADDED_AUDIO_SECONDS)
        model_seconds = PADDED_AUDIO_SECONDS
    frames = pinned.embedding_frames(model_seconds)
    seed = request.seed if request.seed is not None else (rng or random).randint(0, MAX_SEED)
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
        target_frames=max(1, round(audio.duration_seconds * OUTPUT_FPS)),
        timeout_seconds=settings.job_timeout(audio.duration_seconds),
        sampling=settings.sampling(request.quality),
    )


def upright_png(source: Path, destination: Path) -> Path:
    """The portrait as displayed (EXIF rotation applied), on grey where it was transparent."""
    with Image.open(source) as img:
        upright = ImageOps.exif_transpose(img).convert("RGBA")
    flat = Image.alpha_composite(Image.new("RGBA", upright.size, _GREY), upright).convert("RGB")
    flat.save(destination, format="PNG")
    return destination


def pad_audio(source: Path, destination: Path, seconds: float) -> Path:
    """A 16 kHz mono WAV of `source` followed by silence up to `seconds`."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=PAD_RATE)
    chunks: list[np.ndarray] = []
    with av.open(str(source)) as container:
        for decoded in chain(container.decode(audio=0), [None]):
            chunks.extend(frame.to_ndarray().reshape(-1) for frame in resampler.resample(decoded))
    samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
    total = max(len(samples), math.ceil(seconds * PAD_RATE))
    padded = np.zeros(total, dtype=np.int16)
    padded[: len(samples)] = samples
    with wave.open(str(destination), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(PAD_RATE)
        out.writeframes(padded.tobytes())
    return destination
