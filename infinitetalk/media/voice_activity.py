"""Energy-based voice activity: where a speech track is silent long enough to cut it.

A segment boundary must never fall inside speech, so the planner only cuts inside the
silences found here. The measure is plain frame energy: RMS per 10 ms hop in dB, speech
where it is within `SILENCE_BELOW_DB` of the track's own speech level (its 95th
percentile), so a quiet recording is judged against itself, not against full scale. A
hangover keeps a word's decaying tail (and breath between syllables) counted as speech.
"""

from dataclasses import dataclass

import numpy as np

HOP_SECONDS = 0.01
"""One level per 10 ms: finer than a video frame, so cut times are not limited by it."""
SPEECH_PERCENTILE = 95.0
"""The track's speech level: loud enough to ignore pauses, robust to a few peaks."""
SILENCE_BELOW_DB = 35.0
"""A hop this far below the speech level is silence (for speech at -20 dBFS: -55 dBFS)."""
HANGOVER_SECONDS = 0.1
"""Speech goes on this long after its last loud hop (decays, plosive releases)."""
MIN_SILENCE_SECONDS = 0.3
"""Shorter pauses are gaps between words: cutting there would be audible as a jump."""
FLOOR_DB = -120.0
"""What digital silence measures, instead of minus infinity."""


@dataclass(frozen=True)
class Silence:
    """A pause in the speech, in seconds from the start of the track."""

    start: float
    end: float

    @property
    def middle(self) -> float:
        return (self.start + self.end) / 2


def levels_db(rms: np.ndarray) -> np.ndarray:
    """RMS amplitudes (full scale 1.0) in dBFS, digital silence at FLOOR_DB."""
    with np.errstate(divide="ignore"):
        decibels = 20.0 * np.log10(np.asarray(rms, dtype=np.float64))
    return np.maximum(decibels, FLOOR_DB)


def speech_mask(
    levels: np.ndarray,
    *,
    below_db: float = SILENCE_BELOW_DB,
    hangover_hops: int = round(HANGOVER_SECONDS / HOP_SECONDS),
) -> np.ndarray:
    """True for each hop that is speech, its hangover included."""
    if levels.size == 0:
        return np.zeros(0, dtype=bool)
    reference = float(np.percentile(levels, SPEECH_PERCENTILE))
    if reference <= FLOOR_DB:
        return np.zeros(levels.size, dtype=bool)  # all digital silence
    loud = levels > reference - below_db
    if hangover_hops <= 0:
        return loud
    # A hop is speech if any of the `hangover_hops` hops before it (or itself) is loud.
    window = np.ones(hangover_hops + 1, dtype=np.int64)
    return np.convolve(loud.astype(np.int64), window)[: levels.size] > 0


def find_silences(
    speech: np.ndarray,
    *,
    hop_seconds: float = HOP_SECONDS,
    min_seconds: float = MIN_SILENCE_SECONDS,
) -> list[Silence]:
    """Every run of non-speech hops lasting at least `min_seconds`, in order."""
    quiet = np.concatenate(([False], ~speech, [False])).astype(np.int8)
    edges = np.diff(quiet)
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    min_hops = min_seconds / hop_seconds - 1e-9
    return [
        Silence(start * hop_seconds, end * hop_seconds)
        for start, end in zip(starts, ends, strict=True)
        if end - start >= min_hops
    ]
