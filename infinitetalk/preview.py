"""The CPU preview engine: a real MP4 with audio-driven motion and no model (DESIGN.md section 6).

It exists so the whole system runs and is testable without a GPU. The lower face stretches
open with the loudness of each 40 ms of audio and the head bobs gently; every frame carries
a "PREVIEW" label and the file's metadata says so, so it is never mistaken for
InfiniteTalk output. The prompt is ignored; the seed only shifts the head-bob phase.
"""

import math
import time
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace
from PIL import Image, ImageDraw, ImageFont, ImageOps

from contracts import FailureCode, Quality, Stage
from infinitetalk.engine import (
    CancelCheck,
    CancelledError,
    EngineError,
    InvalidInputError,
    ProgressCallback,
    VideoRequest,
    VideoResult,
)
from infinitetalk.media import (
    OUTPUT_FPS,
    output_size,
    probe_audio,
    probe_image,
    probe_video,
    verify_output,
)
from infinitetalk.mux import MP4_OPTIONS, AudioFeed, AudioTrack, add_h264_stream

OUTPUT_NAME = "preview.mp4"
LABEL = "PREVIEW"
GENERATING_SHARE = 90.0
"""Percent of the progress bar spent rendering frames; the rest is finishing the file."""
PROGRESS_INTERVAL_S = 0.25
CANCEL_POLL_FRAMES = 5
ANALYSIS_RATE = 8000
"""Loudness only needs the speech band, so it is measured on a cheap 8 kHz mono copy."""
X264_OPTIONS = {"preset": "veryfast", "crf": "23"}

# Where a centred head-and-shoulders portrait has its face: the centre's height as a
# fraction of the frame, half-sizes as fractions of the short side, and the mouth line in
# face half-heights below the centre. examples/make_examples.py draws to the same layout.
FACE_CENTER_Y = 0.42
FACE_HALF_WIDTH = 0.28
FACE_HALF_HEIGHT = 0.36
MOUTH_LINE = 0.52
MAX_JAW_DROP = 0.08
"""Largest mouth opening, in face half-heights."""
MOUTH_BAND = 0.08
"""Half-height of the band around the mouth line that stretches open; it must stay well
above MAX_JAW_DROP * 0.75 (smoothstep's steepest slope) or the warp folds over itself.
The band sits a little below the line because the warp pulls pixels from above: centred
so, its steepest stretch lands on the lips' parting line when the mouth is well open."""
HEAD_BOB = 0.012
"""Head-bob amplitude, as a fraction of the short side."""


class PreviewEngine:
    """Animates the portrait on the CPU; fast enough for minutes of audio at 720p."""

    name = "preview"

    def quality_unavailable(self, quality: Quality) -> None:
        """Both: the preview renders the same way at any quality."""
        return None

    def generate(
        self,
        request: VideoRequest,
        workdir: Path,
        on_progress: ProgressCallback,
        cancelled: CancelCheck,
    ) -> VideoResult:
        """Render, mux the original audio, then check the file against the output contract."""
        image = probe_image(request.image_path)
        audio = probe_audio(request.audio_path)
        progress = _Progress(on_progress)
        progress.report(0.0, Stage.GENERATING, None)
        if cancelled():
            raise CancelledError()

        size = output_size(image.width, image.height, request.resolution)
        frame_count = max(1, round(audio.duration_seconds * OUTPUT_FPS))
        motion = _Motion.from_audio(request.audio_path, frame_count, size, request.seed)
        rig = _FaceRig(_base_frame(request.image_path, size), size)

        workdir.mkdir(parents=True, exist_ok=True)
        output = workdir / OUTPUT_NAME
        track = AudioTrack.for_source(request.audio_path, audio)
        try:
            _write_mp4(output, rig, motion, track, progress, cancelled)
            info = probe_video(output)
            verify_output(info, audio.duration_seconds, size)
        except InvalidInputError as exc:
            output.unlink(missing_ok=True)
            raise EngineError(
                FailureCode.GENERATION_FAILED.value, f"preview output is unreadable: {exc}"
            ) from exc
        except BaseException:
            output.unlink(missing_ok=True)
            raise
        progress.report(100.0, Stage.ENCODING, 0.0)
        return VideoResult(
            path=output,
            duration_seconds=info.duration_seconds,
            width=info.width,
            height=info.height,
            engine=self.name,
        )


def _write_mp4(
    output: Path,
    rig: "_FaceRig",
    motion: "_Motion",
    track: AudioTrack,
    progress: "_Progress",
    cancelled: CancelCheck,
) -> None:
    """Write video frames and the re-encoded original audio, interleaved, as a faststart MP4."""
    total = motion.frame_count
    with av.open(str(output), "w", format="mp4", options=MP4_OPTIONS) as container:
        container.metadata["comment"] = "avatar preview engine: not InfiniteTalk output"
        video = add_h264_stream(container, rig.size, X264_OPTIONS)
        feed = AudioFeed(container, track)
        try:
            started = time.monotonic()
            for index in range(total):
                if index % CANCEL_POLL_FRAMES == 0 and cancelled():
                    raise CancelledError()
                frame = av.VideoFrame.from_ndarray(
                    rig.render(motion.bob[index], motion.jaw[index]), format="yuv420p"
                )
                frame.pts = index
                container.mux(video.encode(frame))
                feed.mux_until((index + 1) / OUTPUT_FPS)
                progress.frames(index + 1, total, time.monotonic() - started)
            progress.report(GENERATING_SHARE, Stage.ENCODING, progress.tail_eta)
            feed.finish()
        finally:
            feed.close()
        container.mux(video.encode(None))


def _loudness(path: Path, frame_count: int) -> np.ndarray:
    """RMS of the audio under each video frame (40 ms windows), padded to `frame_count`."""
    hop = ANALYSIS_RATE // OUTPUT_FPS
    resampler = av.AudioResampler(format="flt", layout="mono", rate=ANALYSIS_RATE, frame_size=hop)
    levels = np.zeros(frame_count, dtype=np.float64)
    index = 0
    with av.open(str(path)) as container:
        for decoded in chain(container.decode(audio=0), [None]):
            for chunk in resampler.resample(decoded):
                if index < frame_count:
                    samples = chunk.to_ndarray()[0].astype(np.float64)
                    levels[index] = math.sqrt(float(np.mean(samples * samples)))
                index += 1
    return levels


def _follow(values: np.ndarray, attack: float, release: float) -> np.ndarray:
    """Envelope follower: rises quickly, falls slowly, like a jaw or a nod."""
    out = np.empty_like(values)
    state = 0.0
    for index, value in enumerate(values):
        state += (attack if value > state else release) * (value - state)
        out[index] = state
    return out


@dataclass(frozen=True)
class _Motion:
    """Per-frame motion in output pixels: head bob (down is positive) and jaw drop."""

    bob: np.ndarray
    jaw: np.ndarray

    @property
    def frame_count(self) -> int:
        return int(self.jaw.size)

    @classmethod
    def from_audio(
        cls, audio_path: Path, frame_count: int, size: tuple[int, int], seed: int | None
    ) -> "_Motion":
        rms = _loudness(audio_path, frame_count)
        reference = float(np.percentile(rms, 95))
        level = np.clip(rms / reference, 0.0, 1.0) if reference > 1e-4 else np.zeros_like(rms)
        opening = _follow(np.clip((level - 0.15) / 0.85, 0.0, 1.0), attack=0.7, release=0.35)
        nod = _follow(level, attack=0.1, release=0.04)
        short = min(size)
        seconds = np.arange(frame_count) / OUTPUT_FPS
        phase = ((seed or 0) % 360) * math.pi / 180
        sway = np.sin(2 * math.pi * 0.3 * seconds + phase)
        bob = HEAD_BOB * short * (0.5 * sway + nod)
        jaw = MAX_JAW_DROP * FACE_HALF_HEIGHT * short * opening
        return cls(bob=bob.astype(np.float32), jaw=jaw.astype(np.float32))


def _base_frame(image_path: Path, size: tuple[int, int]) -> np.ndarray:
    """The still portrait at output size with its label, as one yuv420p buffer (BT.709)."""
    with Image.open(image_path) as source:
        source.draft("RGB", (max(size), max(size)))
        upright = ImageOps.exif_transpose(source).convert("RGBA")
    canvas = Image.new("RGBA", upright.size, (128, 128, 128, 255))
    portrait = Image.alpha_composite(canvas, upright).convert("RGB")
    portrait = portrait.resize(size, Image.Resampling.LANCZOS)
    _draw_label(portrait)
    frame = av.VideoFrame.from_image(portrait).reformat(
        format="yuv420p", dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG
    )
    return frame.to_ndarray()


def _label_box(size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Bottom-right corner box (even coordinates, so chroma lines up) holding the label."""
    width, height = size
    short = min(size)
    font_size = max(12, round(0.035 * short))
    box_w = _even(font_size * 5.6)
    box_h = _even(font_size * 1.6)
    margin = _even(0.02 * short)
    return width - margin - box_w, height - margin - box_h, width - margin, height - margin


def _draw_label(img: Image.Image) -> None:
    left, top, right, bottom = _label_box(img.size)
    font = ImageFont.load_default(size=round((bottom - top) / 1.6))
    overlay = Image.new("RGBA", img.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    draw.rounded_rectangle(
        (left, top, right, bottom), radius=(bottom - top) // 4, fill=(0, 0, 0, 150)
    )
    center = ((left + right) / 2, (top + bottom) / 2)
    draw.text(center, LABEL, font=font, fill=(255, 255, 255, 235), anchor="mm")
    img.paste(Image.alpha_composite(img.convert("RGBA"), overlay).convert("RGB"))


def _even(value: float) -> int:
    return max(2, round(value / 2) * 2)


def _smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


class _PlaneWarp:
    """Moves the pixels of same-sized image planes vertically around the face.

    The displacement is `bob * head + jaw * chin`: `head` is 1 over the head and fades out
    around it, `chin` is 1 from just below the mouth line to the chin and fades out below,
    so a jaw drop parts the lips. Only the box where the fields are non-zero is touched.
    Each output pixel blends two vertically adjacent source pixels in 8-bit fixed point;
    both, for every plane (U and V share one warp), are packed into one integer up front so
    a frame costs a single gather.
    """

    def __init__(self, sources: list[np.ndarray], subsample: int, size: tuple[int, int]) -> None:
        height, width = sources[0].shape
        out_w, out_h = size
        short = min(size)
        half_w, half_h = FACE_HALF_WIDTH * short, FACE_HALF_HEIGHT * short
        u = ((np.arange(width) + 0.5) * subsample - out_w / 2) / half_w
        v = ((np.arange(height) + 0.5) * subsample - FACE_CENTER_Y * out_h) / half_h
        uu, vv = u[None, :], v[:, None]
        radius = np.sqrt(uu**2 + (vv + 0.05) ** 2) / 1.1
        head = 1.0 - _smoothstep(0.95, 1.35, radius)
        across = 1.0 - _smoothstep(0.3, 0.8, np.abs(uu))
        parting = MOUTH_LINE + MAX_JAW_DROP / 2
        down = _smoothstep(parting - MOUTH_BAND, parting + MOUTH_BAND, vv)
        chin = across * down * (1.0 - _smoothstep(1.0, 1.35, vv))
        rows = np.flatnonzero(head.any(axis=1))
        cols = np.flatnonzero(head.any(axis=0))
        self.box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        self.head = (head[self.box] * (256 / subsample)).astype(np.float32)
        self.chin = (chin[self.box] * (256 / subsample)).astype(np.float32)
        self.rows = (np.arange(rows[0], rows[-1] + 1, dtype=np.int32) * 256)[:, None]
        self.cols = np.arange(cols[0], cols[-1] + 1, dtype=np.int32)[None, :]
        self.width = width
        self.last_position = height * 256 - 1
        dtype = np.uint16 if len(sources) == 1 else np.uint32
        packed = np.zeros((height, width), dtype=dtype)
        for plane, source in enumerate(sources):
            below = np.concatenate([source[1:], source[-1:]])
            packed |= source.astype(dtype) << (16 * plane)
            packed |= below.astype(dtype) << (16 * plane + 8)
        self.packed = packed.reshape(-1)

    def apply(self, targets: list[np.ndarray], bob: float, jaw: float) -> None:
        shift = self.head * bob
        shift += self.chin * jaw
        position = self.rows - shift.astype(np.int32)
        np.clip(position, 0, self.last_position, out=position)
        weight = (position & 255).astype(np.uint16)
        inverse = 256 - weight
        position >>= 8
        position *= self.width
        position += self.cols
        packed = self.packed.take(position)
        for plane, target in enumerate(targets):
            upper = ((packed >> (16 * plane)) & 255).astype(np.uint16)
            lower = ((packed >> (16 * plane + 8)) & 255).astype(np.uint16)
            target[self.box] = (upper * inverse + lower * weight + 128) >> 8


class _FaceRig:
    """Holds the still frame and renders moved copies of it into one reused buffer."""

    def __init__(self, base: np.ndarray, size: tuple[int, int]) -> None:
        self.size = size
        self.work = base.copy()
        sources = [_plane(base, size, index) for index in range(3)]
        targets = [_plane(self.work, size, index) for index in range(3)]
        left, top, right, bottom = _label_box(size)
        luma_label = (slice(top, bottom), slice(left, right))
        chroma_label = (slice(top // 2, bottom // 2), slice(left // 2, right // 2))
        self.passes = [
            (_PlaneWarp(sources[:1], 1, size), sources[:1], targets[:1], luma_label),
            (_PlaneWarp(sources[1:], 2, size), sources[1:], targets[1:], chroma_label),
        ]

    def render(self, bob: float, jaw: float) -> np.ndarray:
        """Return the frame for this motion; the label box is restored so it never moves."""
        for warp, sources, targets, label in self.passes:
            warp.apply(targets, bob, jaw)
            for source, target in zip(sources, targets, strict=True):
                target[label] = source[label]
        return self.work


def _plane(buffer: np.ndarray, size: tuple[int, int], index: int) -> np.ndarray:
    """View plane `index` (Y, U or V) of a yuv420p buffer as PyAV lays it out."""
    width, height = size
    luma = width * height
    chroma = (width // 2) * (height // 2)
    flat = buffer.reshape(-1)
    if index == 0:
        return flat[:luma].reshape(height, width)
    start = luma + (index - 1) * chroma
    return flat[start : start + chroma].reshape(height // 2, width // 2)


class _Progress:
    """Forwards progress at most every PROGRESS_INTERVAL_S, never letting percent go down."""

    def __init__(self, on_progress: ProgressCallback) -> None:
        self.on_progress = on_progress
        self.percent = 0.0
        self.last_report = -math.inf
        self.tail_eta: float | None = None

    def report(self, percent: float, stage: Stage, eta: float | None) -> None:
        self.percent = max(self.percent, percent)
        self.last_report = time.monotonic()
        self.on_progress(self.percent, stage, eta)

    def frames(self, done: int, total: int, elapsed: float) -> None:
        """ETA from the measured frame rate; finishing the file costs about 5% more."""
        per_frame = elapsed / done
        self.tail_eta = 0.05 * total * per_frame
        if time.monotonic() - self.last_report < PROGRESS_INTERVAL_S:
            return
        eta = (total - done) * per_frame + self.tail_eta
        self.report(GENERATING_SHARE * done / total, Stage.GENERATING, eta)
