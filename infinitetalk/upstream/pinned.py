"""What this project relies on from upstream InfiniteTalk, pinned to one commit.

Every fact here was read from `MeiGen-AI/InfiniteTalk` at `UPSTREAM_COMMIT`
(`generate_infinitetalk.py`, `wan/multitalk.py`, `wan/utils/multitalk_utils.py`). The
Dockerfile clones exactly this commit and `tests/test_dockerfile.py` checks that it does;
moving the pin means re-reading those files and updating this module first.
"""

import math
from pathlib import Path

from contracts import Resolution

UPSTREAM_REPOSITORY = "https://github.com/MeiGen-AI/InfiniteTalk"
UPSTREAM_COMMIT = "0107cd96421b3b1bef7728bde14447dbff7b2db2"
"""main on 2025-08-25: the first release plus README fixes; later commits were not needed."""

SCRIPT = "generate_infinitetalk.py"
TASK = "infinitetalk-14B"
FPS = 25
CLIP_FRAMES = 81
"""Frames in one generated chunk (`--frame_num`, upstream's default and training length)."""
MOTION_FRAMES = 9
"""Frames of one chunk that condition the next (`--motion_frame`, as the README runs it)."""
MIN_EMBEDDING_FRAMES = CLIP_FRAMES + 1
"""The pipeline skips, then asserts on, an audio embedding of `CLIP_FRAMES` frames or fewer."""

SIZE_ARGUMENT = {Resolution.P480: "infinitetalk-480", Resolution.P720: "infinitetalk-720"}
DEFAULT_SAMPLE_SHIFT = {Resolution.P480: 7.0, Resolution.P720: 11.0}
"""What `_validate_args` picks when `--sample_shift` is not given."""

# The size buckets of `wan/utils/multitalk_utils.py` (ASPECT_RATIO_627 and _960): the
# pipeline resizes and centre-crops the portrait to the (height, width) whose key is
# nearest to height/width, the first listed winning a tie.
_BUCKETS: dict[Resolution, tuple[tuple[float, tuple[int, int]], ...]] = {
    Resolution.P480: (
        (0.26, (320, 1216)),
        (0.38, (384, 1024)),
        (0.50, (448, 896)),
        (0.67, (512, 768)),
        (0.82, (576, 704)),
        (1.00, (640, 640)),
        (1.22, (704, 576)),
        (1.50, (768, 512)),
        (1.86, (832, 448)),
        (2.00, (896, 448)),
        (2.50, (960, 384)),
        (2.83, (1088, 384)),
        (3.60, (1152, 320)),
        (3.80, (1216, 320)),
        (4.00, (1280, 320)),
    ),
    Resolution.P720: (
        (0.22, (448, 2048)),
        (0.29, (512, 1792)),
        (0.36, (576, 1600)),
        (0.45, (640, 1408)),
        (0.55, (704, 1280)),
        (0.63, (768, 1216)),
        (0.76, (832, 1088)),
        (0.88, (896, 1024)),
        (1.00, (960, 960)),
        (1.14, (1024, 896)),
        (1.31, (1088, 832)),
        (1.50, (1152, 768)),
        (1.58, (1216, 768)),
        (1.82, (1280, 704)),
        (1.91, (1344, 704)),
        (2.20, (1408, 640)),
        (2.30, (1472, 640)),
        (2.67, (1536, 576)),
        (2.89, (1664, 576)),
        (3.62, (1856, 512)),
        (3.75, (1920, 512)),
    ),
}


def output_size(width: int, height: int, resolution: Resolution) -> tuple[int, int]:
    """(width, height) of the video upstream makes from a `width` x `height` portrait."""
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    ratio = height / width
    _, (bucket_h, bucket_w) = min(_BUCKETS[resolution], key=lambda item: abs(item[0] - ratio))
    return bucket_w, bucket_h


def embedding_frames(audio_seconds: float) -> int:
    """Frames of the wav2vec embedding upstream computes: int(seconds x 25), as `get_embedding`."""
    return int(audio_seconds * FPS + 1e-9)


def chunk_count(frames: int) -> int:
    """Chunks (one tqdm bar each) the streaming loop runs for `frames` frames of audio.

    The first chunk makes CLIP_FRAMES frames; each later one CLIP_FRAMES - MOTION_FRAMES
    more, until the audio is covered.
    """
    if frames <= CLIP_FRAMES:
        return 1
    return 1 + math.ceil((frames - CLIP_FRAMES) / (CLIP_FRAMES - MOTION_FRAMES))


AUDIO_TYPE = {"sequential": "add", "simultaneous": "para"}
"""Upstream's `audio_type` for each speaker mode: `add` concatenates person2 after person1,
`para` sums the two (and fails unless both have the same length)."""


def upstream_bbox(box: tuple[int, int, int, int]) -> list[int]:
    """Our `[x1, y1, x2, y2]` as upstream's `bbox` entry: `generate_infinitetalk` fills
    `human_mask[x_min:x_max, y_min:y_max]` on a (height, width) mask, so its "x" values
    index rows: it wants `[y1, x1, y2, x2]`, in the cond frame's pixels."""
    x1, y1, x2, y2 = box
    return [y1, x1, y2, x2]


COMMIT_STAMP = ".upstream-commit"
"""Written by scripts/fetch_upstream.sh, also where it unpacked an archive (no `.git`)."""


def checkout_commit(upstream_dir: Path) -> str | None:
    """The commit an upstream checkout is at, read from `.git` without a git binary."""
    git = upstream_dir / ".git"
    if not git.exists():
        stamp = upstream_dir / COMMIT_STAMP
        return (stamp.read_text().strip() or None) if stamp.is_file() else None
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head or None
        ref = head.removeprefix("ref: ")
        loose = git / ref
        if loose.is_file():
            return loose.read_text().strip() or None
        for line in (git / "packed-refs").read_text().splitlines():
            commit, _, name = line.partition(" ")
            if name == ref:
                return commit
    except OSError:
        return None
    return None
