"""The preview's portrait: the still frame with its label, and the warp that moves its face.

The warp works on yuv420p planes in place, so a frame costs one gather per plane group.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace
from PIL import Image, ImageDraw, ImageFont, ImageOps

LABEL = "PREVIEW"
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


def base_frame(image_path: Path, size: tuple[int, int]) -> np.ndarray:
    """The still portrait at output size with its label, as one yuv420p buffer (BT.709)."""
    with Image.open(image_path) as source:
        source.draft("RGB", (max(size), max(size)))
        upright = ImageOps.exif_transpose(source).convert("RGBA")
    canvas = Image.new("RGBA", upright.size, (128, 128, 128, 255))
    return labelled_frame(Image.alpha_composite(canvas, upright).convert("RGB"), size)


def labelled_frame(picture: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """An RGB picture (a portrait, or a frame of a video to dub) at output size with its
    label, as one yuv420p buffer (BT.709)."""
    resized = picture.resize(size, Image.Resampling.LANCZOS)
    _draw_label(resized)
    frame = av.VideoFrame.from_image(resized).reformat(
        format="yuv420p", dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG
    )
    return frame.to_ndarray()


def label_box(size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Bottom-right corner box (even coordinates, so chroma lines up) holding the label."""
    width, height = size
    short = min(size)
    font_size = max(12, round(0.035 * short))
    box_w = _even(font_size * 5.6)
    box_h = _even(font_size * 1.6)
    margin = _even(0.02 * short)
    return width - margin - box_w, height - margin - box_h, width - margin, height - margin


def _draw_label(img: Image.Image) -> None:
    left, top, right, bottom = label_box(img.size)
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


@dataclass(frozen=True)
class FaceRegion:
    """Where a face sits in the output frame, in output pixels: its centre and half-sizes."""

    center_x: float
    center_y: float
    half_width: float
    half_height: float

    @classmethod
    def centred(cls, size: tuple[int, int]) -> "FaceRegion":
        """A centred head-and-shoulders portrait's face (the layout constants above)."""
        width, height = size
        short = min(size)
        return cls(
            width / 2, FACE_CENTER_Y * height, FACE_HALF_WIDTH * short, FACE_HALF_HEIGHT * short
        )

    @classmethod
    def of_box(
        cls, box: tuple[int, int, int, int], source: tuple[int, int], size: tuple[int, int]
    ) -> "FaceRegion":
        """A speaker's box in the source picture's pixels, scaled to the output frame (the
        preview scales the whole picture, so the box scales with it)."""
        scale_x, scale_y = size[0] / source[0], size[1] / source[1]
        x1, y1, x2, y2 = box
        return cls(
            (x1 + x2) / 2 * scale_x,
            (y1 + y2) / 2 * scale_y,
            (x2 - x1) / 2 * scale_x,
            (y2 - y1) / 2 * scale_y,
        )


class _PlaneWarp:
    """Moves the pixels of same-sized image planes vertically around one face.

    The displacement is `bob * head + jaw * chin`: `head` is 1 over the head and fades out
    around it, `chin` is 1 from just below the mouth line to the chin and fades out below,
    so a jaw drop parts the lips. Only the box where the fields are non-zero is touched.
    Each output pixel blends two vertically adjacent source pixels in 8-bit fixed point;
    both, for every plane (U and V share one warp), are packed into one integer (`pack`,
    again for each new source frame) so a frame costs a single gather.
    """

    def __init__(
        self, shape: tuple[int, int], subsample: int, region: FaceRegion, planes: int
    ) -> None:
        height, width = shape
        u = ((np.arange(width) + 0.5) * subsample - region.center_x) / region.half_width
        v = ((np.arange(height) + 0.5) * subsample - region.center_y) / region.half_height
        uu, vv = u[None, :], v[:, None]
        radius = np.sqrt(uu**2 + (vv + 0.05) ** 2) / 1.1
        head = 1.0 - _smoothstep(0.95, 1.35, radius)
        across = 1.0 - _smoothstep(0.3, 0.8, np.abs(uu))
        parting = MOUTH_LINE + MAX_JAW_DROP / 2
        down = _smoothstep(parting - MOUTH_BAND, parting + MOUTH_BAND, vv)
        chin = across * down * (1.0 - _smoothstep(1.0, 1.35, vv))
        rows = np.flatnonzero(head.any(axis=1))
        cols = np.flatnonzero(head.any(axis=0))
        if rows.size == 0 or cols.size == 0:  # a face too small to reach a pixel centre
            rows, cols = np.array([0]), np.array([0])
            head = chin = np.zeros_like(head)
        self.box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        self.head = (head[self.box] * (256 / subsample)).astype(np.float32)
        self.chin = (chin[self.box] * (256 / subsample)).astype(np.float32)
        self.rows = (np.arange(rows[0], rows[-1] + 1, dtype=np.int32) * 256)[:, None]
        self.cols = np.arange(cols[0], cols[-1] + 1, dtype=np.int32)[None, :]
        self.width = width
        self.last_position = height * 256 - 1
        self.dtype: type[np.unsignedinteger[Any]] = np.uint16 if planes == 1 else np.uint32
        self.packed: np.ndarray = np.zeros(height * width, dtype=self.dtype)

    def pack(self, sources: list[np.ndarray]) -> None:
        packed = np.zeros(sources[0].shape, dtype=self.dtype)
        for plane, source in enumerate(sources):
            below = np.concatenate([source[1:], source[-1:]])
            packed |= np.left_shift(source.astype(self.dtype), 16 * plane)
            packed |= np.left_shift(below.astype(self.dtype), 16 * plane + 8)
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


class FaceRig:
    """Holds the frame and renders moved copies of it into one reused buffer: one face
    (centred), or one per speaker's region. `rebase` swaps in a new frame (dubbing)."""

    def __init__(
        self, base: np.ndarray, size: tuple[int, int], regions: list[FaceRegion] | None = None
    ) -> None:
        self.size = size
        self.regions = regions or [FaceRegion.centred(size)]
        left, top, right, bottom = label_box(size)
        self.labels = (
            (slice(top, bottom), slice(left, right)),
            (slice(top // 2, bottom // 2), slice(left // 2, right // 2)),
        )
        width, height = size
        shapes = ((height, width), (height // 2, width // 2))
        self.warps = [
            [
                _PlaneWarp(shapes[0], 1, region, 1),
                _PlaneWarp(shapes[1], 2, region, 2),
            ]
            for region in self.regions
        ]
        self.work = base.copy()
        self.targets = [plane(self.work, size, index) for index in range(3)]
        self.rebase(base)

    def rebase(self, base: np.ndarray) -> None:
        """A new frame to move (the next frame of a dubbed video)."""
        self.base = base
        self.sources = [plane(base, self.size, index) for index in range(3)]
        for luma, chroma in self.warps:
            luma.pack(self.sources[:1])
            chroma.pack(self.sources[1:])
        np.copyto(self.work, base)

    def render(self, motions: list[tuple[float, float]]) -> np.ndarray:
        """The frame with each face moved by its own (bob, jaw); the label never moves."""
        groups = ((self.sources[:1], self.targets[:1]), (self.sources[1:], self.targets[1:]))
        for (luma, chroma), (bob, jaw) in zip(self.warps, motions, strict=True):
            for warp, (_, targets) in zip((luma, chroma), groups, strict=True):
                warp.apply(targets, bob, jaw)
        for (sources, targets), label in zip(groups, self.labels, strict=True):
            for source, target in zip(sources, targets, strict=True):
                target[label] = source[label]
        return self.work


def plane(buffer: np.ndarray, size: tuple[int, int], index: int) -> np.ndarray:
    """View plane `index` (Y, U or V) of a yuv420p buffer as PyAV lays it out."""
    width, height = size
    luma = width * height
    chroma = (width // 2) * (height // 2)
    flat = buffer.reshape(-1)
    if index == 0:
        return flat[:luma].reshape(height, width)
    start = luma + (index - 1) * chroma
    return flat[start : start + chroma].reshape(height // 2, width // 2)
