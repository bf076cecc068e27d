"""The preview's portrait: the still frame with its label, and the warp that moves its face.

The warp works on yuv420p planes in place, so a frame costs one gather per plane group.
"""

from pathlib import Path

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
    portrait = Image.alpha_composite(canvas, upright).convert("RGB")
    portrait = portrait.resize(size, Image.Resampling.LANCZOS)
    _draw_label(portrait)
    frame = av.VideoFrame.from_image(portrait).reformat(
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
            packed |= np.left_shift(source.astype(dtype), 16 * plane)
            packed |= np.left_shift(below.astype(dtype), 16 * plane + 8)
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
    """Holds the still frame and renders moved copies of it into one reused buffer."""

    def __init__(self, base: np.ndarray, size: tuple[int, int]) -> None:
        self.size = size
        self.work = base.copy()
        sources = [plane(base, size, index) for index in range(3)]
        targets = [plane(self.work, size, index) for index in range(3)]
        left, top, right, bottom = label_box(size)
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
