"""Where to cut a long speech track into segments that agents generate in parallel.

Cuts fall only at the middle of a silence (`voice_activity.find_silences`), rounded to a
whole video frame, so every segment's audio lasts a whole number of frames and the
segments' frame counts add up to exactly the unsplit job's `round(seconds x 25)`. Among
all cut sets, `plan_segments` picks the one whose segment lengths are closest to the
target (least squares), with every segment at least `min_seconds` and at most
`max_segments` segments.

When no silence lies within `max_seconds` of the previous cut, a segment runs past
`max_seconds` to the next silence instead of cutting inside speech: the plan minimises
the excess first, so this happens only where the speech gives no choice. A track too
short to split into two segments of `min_seconds` is one segment.
"""

import itertools
import math
from dataclasses import dataclass

import numpy as np

from infinitetalk.media.output import OUTPUT_FPS
from infinitetalk.media.voice_activity import Silence

OVERLONG_PENALTY = 1e9
"""Cost per second beyond `max_seconds`: any in-bounds plan is cheaper than any other."""


@dataclass(frozen=True)
class PlannedSegment:
    """One segment: `[start_frame, end_frame)` of the output video, and its audio span."""

    index: int
    start_frame: int
    end_frame: int
    start_seconds: float
    end_seconds: float

    @property
    def frames(self) -> int:
        return self.end_frame - self.start_frame


def target_seconds(
    audio_seconds: float,
    *,
    agents_seen: int,
    max_segments: int | None,
    min_seconds: float,
    max_seconds: float,
) -> float:
    """One segment per agent (at most `max_segments`), within the segment length bounds."""
    ways = max(1, min(agents_seen, max_segments if max_segments is not None else agents_seen))
    return min(max(audio_seconds / ways, min_seconds), max_seconds)


def cut_frames(silences: list[Silence], total_frames: int) -> list[int]:
    """Candidate cuts: each silence's middle on a whole frame, inside the silence."""
    cuts = set()
    for silence in silences:
        frame = round(silence.middle * OUTPUT_FPS)
        if 0 < frame < total_frames and silence.start <= frame / OUTPUT_FPS <= silence.end:
            cuts.add(frame)
    return sorted(cuts)


def plan_segments(
    audio_seconds: float,
    silences: list[Silence],
    *,
    min_seconds: float,
    max_seconds: float,
    max_segments: int | None,
    agents_seen: int,
) -> list[PlannedSegment]:
    """The segments of a track of `audio_seconds`, cut only inside `silences`."""
    total_frames = max(1, round(audio_seconds * OUTPUT_FPS))
    target = target_seconds(
        audio_seconds,
        agents_seen=agents_seen,
        max_segments=max_segments,
        min_seconds=min_seconds,
        max_seconds=max_seconds,
    )
    positions = [0, *cut_frames(silences, total_frames), total_frames]
    limit = max_segments if max_segments is not None else math.floor(audio_seconds / min_seconds)
    boundaries = _best_boundaries(
        np.asarray(positions, dtype=np.float64) / OUTPUT_FPS,
        max(1, min(limit, len(positions) - 1)),
        target,
        min_seconds,
        max_seconds,
    )
    frames = [positions[i] for i in boundaries]
    return [
        PlannedSegment(
            index=index,
            start_frame=start,
            end_frame=end,
            start_seconds=start / OUTPUT_FPS,
            end_seconds=audio_seconds if end == total_frames else end / OUTPUT_FPS,
        )
        for index, (start, end) in enumerate(itertools.pairwise(frames))
    ]


def _best_boundaries(
    times: np.ndarray, max_count: int, target: float, min_seconds: float, max_seconds: float
) -> list[int]:
    """Indices into `times` (first and last included) of the cheapest segmentation.

    Dynamic programming over (segments used, last cut): `best[c, j]` is the cheapest way
    to cover `times[0]..times[j]` with `c + 1` segments.
    """
    last = len(times) - 1
    lengths = times[None, :] - times[:, None]  # [i, j]: a segment from cut i to cut j
    cost = OVERLONG_PENALTY * np.maximum(lengths - max_seconds, 0.0) + (lengths - target) ** 2
    cost[(lengths < min_seconds - 1e-9) | (lengths <= 0)] = np.inf
    whole = times[last]  # one segment is always possible, however short the track
    cost[0, last] = OVERLONG_PENALTY * max(whole - max_seconds, 0.0) + (whole - target) ** 2
    best = np.full((max_count, last + 1), np.inf)
    came_from = np.zeros((max_count, last + 1), dtype=np.int64)
    best[0] = cost[0]
    for count in range(1, max_count):
        totals = best[count - 1][:, None] + cost
        came_from[count] = np.argmin(totals, axis=0)
        best[count] = totals[came_from[count], np.arange(last + 1)]
    count = int(np.argmin(best[:, last]))
    boundaries = [last]
    while count > 0:
        boundaries.append(int(came_from[count, boundaries[-1]]))
        count -= 1
    return [0, *reversed(boundaries)]
