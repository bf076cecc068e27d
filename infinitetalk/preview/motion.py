"""The preview's motion: head bob and jaw drop per video frame, driven by the audio's loudness."""

import math
from dataclasses import dataclass

import numpy as np

from infinitetalk.media.output import OUTPUT_FPS
from infinitetalk.preview.face import FACE_HALF_HEIGHT, HEAD_BOB, MAX_JAW_DROP


def _follow(values: np.ndarray, attack: float, release: float) -> np.ndarray:
    """Envelope follower: rises quickly, falls slowly, like a jaw or a nod."""
    out = np.empty_like(values)
    state = 0.0
    for index, value in enumerate(values):
        state += (attack if value > state else release) * (value - state)
        out[index] = state
    return out


@dataclass(frozen=True)
class Motion:
    """Per-frame motion in output pixels: head bob (down is positive) and jaw drop."""

    bob: np.ndarray
    jaw: np.ndarray

    @property
    def frame_count(self) -> int:
        return int(self.jaw.size)

    def scaled(self, factor: float) -> "Motion":
        """The same motion for a face `factor` times the size the layout assumes."""
        return Motion(bob=self.bob * factor, jaw=self.jaw * factor)

    @classmethod
    def from_loudness(
        cls, loudness: np.ndarray, frame_count: int, size: tuple[int, int], seed: int | None
    ) -> "Motion":
        """From the RMS level under each video frame (`audio_pass`), cut or padded to fit."""
        rms = np.zeros(frame_count, dtype=np.float64)
        kept = min(frame_count, loudness.size)
        rms[:kept] = loudness[:kept]
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
