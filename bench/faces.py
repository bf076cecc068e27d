"""The two-speaker face detector (`infinitetalk.media.faces.find_speakers`): its cost per
image and its accuracy on composed scenes, against baselines measured in the same run.

Scenes are composed from a seed: copies of the real face photo `tests/fixtures/face.jpg`
(resized, brighter or darker) pasted onto a flat, noisy or gradient background, in four
picture sizes, saved as JPEG. Most hold two faces, placed in one of four layouts (about the
middle of each half; both in the left two thirds; one higher than the other; anywhere),
where the detector is right when it reports `detected` with box i holding face i's centre
(left to right) and not the other's. The others hold 0, 1 or 3 faces, where it is right
when it falls back to the halves.

Baselines, on the same scenes: for accuracy, the halves fallback itself on the two-face
scenes (what detection buys over never detecting); for cost, opening, decoding and
greying the image with Pillow, the floor any detector pays, so the detector's cost is a
ratio to it. Each scene is timed `--repeats` times, decode and detector interleaved so
load on the machine slows both alike, and its median kept. The process's first call is
timed apart (it imports OpenCV), and so is building the cascade alone, which
`find_speakers` does on every call.

    .venv/bin/python -m bench.faces [--scenes 48] [--others 12] [--seed 1] [--repeats 3]
        [--sizes 480x240,960x540,1280x720,1920x1080] [--json PATH] [--keep DIR]
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance
from pydantic import BaseModel

from bench.stack import ROOT
from contracts import BoxSource, SpeakerAssignment
from contracts.jobs import Box
from infinitetalk.media.faces import MIN_FACE_SHARE, find_speakers, halves

FACE = ROOT / "tests" / "fixtures" / "face.jpg"
"""The astronaut portrait scikit-image ships, 128 x 128; the face is centred in it (the
cascade finds it at 31-98 on both axes), so a pasted copy's centre is its face's centre."""
FACE_IN_PHOTO = 67 / 128
"""The face's side as a share of the photo's: what the cascade finds in it."""
SIZES = ((480, 240), (960, 540), (1280, 720), (1920, 1080))
LAYOUTS = ("halves", "left two thirds", "offset", "anywhere")
BACKGROUNDS = ("flat", "noise", "gradient")
OTHER_COUNTS = (0, 1, 3)
PHOTO_SHARE = (MIN_FACE_SHARE / FACE_IN_PHOTO, 0.55)
"""A pasted photo's side as a share of the picture's height: its face from the smallest
the detector keeps (6 % of the short side) to 29 % (36 % for the second face, up to 1.25
times the first); at most 0.35 with three faces."""
FACE_BUCKETS = (0.08, 0.10, 0.15)
"""Two-face scenes are also grouped by their smaller face's share of the short side."""
CASCADE_SAMPLES = 5


@dataclass(frozen=True)
class Face:
    x: int
    """Centre, in the picture's pixels."""
    y: int
    side: int
    """The pasted photo's; the face is `FACE_IN_PHOTO` of it."""
    brightness: float


@dataclass(frozen=True)
class Scene:
    index: int
    width: int
    height: int
    layout: str
    background: str
    faces: tuple[Face, ...]
    """Left to right."""

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"

    @property
    def kind(self) -> str:
        count = len(self.faces)
        return f"2 faces, {self.layout}" if count == 2 else f"{count} face{'s' * (count != 1)}"

    def face_shares(self) -> list[float]:
        """Each face's side as a share of the picture's short side."""
        short = min(self.width, self.height)
        return [round(face.side * FACE_IN_PHOTO / short, 3) for face in self.faces]


def compose(
    seed: int, two: int, others: int, sizes: Sequence[tuple[int, int]] = SIZES
) -> list[Scene]:
    """`two` two-face scenes, then `others` with 0, 1 and 3 faces in turn; sizes, layouts
    and backgrounds cycle so that every combination comes up, the rest is drawn."""
    rng = random.Random(seed)
    scenes = []
    for index in range(two + others):
        width, height = sizes[index % len(sizes)]
        if index < two:
            layout, count = LAYOUTS[index // len(sizes) % len(LAYOUTS)], 2
        else:
            layout, count = "anywhere", OTHER_COUNTS[(index - two) % len(OTHER_COUNTS)]
        faces = _place(rng, layout, count, width, height)
        background = BACKGROUNDS[index % len(BACKGROUNDS)]
        scenes.append(Scene(index, width, height, layout, background, faces))
    return scenes


def _place(
    rng: random.Random, layout: str, count: int, width: int, height: int
) -> tuple[Face, ...]:
    """Faces drawn until they lie inside the picture, side by side without overlapping; the
    second one 0.8 to 1.25 times the first's size."""
    low, high = PHOTO_SHARE[0], PHOTO_SHARE[1] if count < 3 else 0.35
    while True:
        first = rng.uniform(low, high) * height
        sides = [first * rng.uniform(0.8, 1.25) if i else first for i in range(count)]
        if layout == "left two thirds":
            xs = [width * rng.uniform(i / 3, (i + 1) / 3) for i in range(count)]
        elif layout == "anywhere":
            xs = sorted(rng.uniform(0, width) for _ in range(count))
        else:  # about the middle of each half
            xs = [width * (0.25 + i / 2 + rng.uniform(-1 / 16, 1 / 16)) for i in range(count)]
        if layout == "offset":  # one about 30 % down, the other 70 %
            ys = [height * (0.3 + 0.4 * i + rng.uniform(-0.05, 0.05)) for i in range(count)]
            rng.shuffle(ys)
        elif layout == "anywhere":
            ys = [rng.uniform(0, height) for _ in range(count)]
        else:
            ys = [height * rng.uniform(0.4, 0.6) for _ in range(count)]
        faces = tuple(
            Face(round(x), round(y), round(side), rng.uniform(0.75, 1.25))
            for x, y, side in zip(xs, ys, sides, strict=True)
        )
        if _fits(faces, width, height):
            return faces


def _fits(faces: tuple[Face, ...], width: int, height: int) -> bool:
    inside = all(
        face.side / 2 <= face.x <= width - face.side / 2
        and face.side / 2 <= face.y <= height - face.side / 2
        for face in faces
    )
    apart = all(b.x - a.x >= (a.side + b.side) / 2 for a, b in itertools.pairwise(faces))
    return inside and apart


def render(scene: Scene, path: Path, seed: int) -> Path:
    """The scene as a JPEG: its background, then each face photo pasted at its place."""
    rng = np.random.default_rng([seed, scene.index])
    shape = (scene.height, scene.width, 3)
    colour = rng.integers(30, 220, size=3)
    if scene.background == "flat":
        pixels = np.broadcast_to(colour, shape).astype(np.float64)
    elif scene.background == "noise":
        pixels = colour + rng.normal(0.0, rng.uniform(10.0, 35.0), size=shape)
    else:
        along = np.linspace(0.0, 1.0, scene.width if rng.random() < 0.5 else scene.height)
        ramp = along[None, :, None] if along.size == scene.width else along[:, None, None]
        pixels = np.broadcast_to(colour + ramp * (rng.integers(30, 220, size=3) - colour), shape)
    picture = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    with Image.open(FACE) as photo:
        head = photo.convert("RGB")
    for face in scene.faces:
        copy = ImageEnhance.Brightness(head.resize((face.side, face.side))).enhance(face.brightness)
        picture.paste(copy, (face.x - face.side // 2, face.y - face.side // 2))
    picture.save(path, quality=90)
    return path


def covers(box: Box, point: tuple[int, int]) -> bool:
    x1, y1, x2, y2 = box
    return x1 <= point[0] < x2 and y1 <= point[1] < y2


def assigned(assignment: SpeakerAssignment, scene: Scene) -> bool:
    """Each box holds its own speaker's face centre and not the other's (two faces only)."""
    centres = [(face.x, face.y) for face in scene.faces]
    return all(
        covers(box, own) and not covers(box, other)
        for box, own, other in zip(assignment.boxes, centres, centres[::-1], strict=True)
    )


class SceneResult(BaseModel):
    index: int
    size: str
    kind: str
    background: str
    centres: list[tuple[int, int]]
    face_shares: list[float]
    """Each face's side as a share of the picture's short side."""
    source: BoxSource
    boxes: tuple[Box, Box]
    detector_correct: bool
    """Two faces: detected, each box on its own face; otherwise: the halves fallback."""
    boxes_correct: bool | None
    """Two faces only: whether the boxes returned, detected or halves, are each on their own
    face: what the job gets."""
    halves_correct: bool | None
    """Two faces only: whether the halves would have put each box on its own face."""
    seconds: float
    """`find_speakers`, the median over the repeats."""
    decode_seconds: float
    """Pillow's open, decode and greyscale of the same file, the median over the repeats."""


class Row(BaseModel):
    """The scenes of one picture size or one kind: accuracy and cost."""

    group: str
    scenes: int
    detector_correct: int
    two_face_scenes: int
    boxes_correct: int
    halves_correct: int
    median_seconds: float
    p95_seconds: float
    decode_median_seconds: float
    ratio: float
    """The detector's median over the decode's: what it costs beyond reading the image."""


class FacesReport(BaseModel):
    seed: int
    repeats: int
    cpus: int | None
    load_average: tuple[float, float, float]
    first_call_seconds: float
    """The process's first call: OpenCV's import, the cascade and a detection."""
    cascade_load_seconds: float
    """Building the cascade classifier alone, which `find_speakers` does on every call."""
    detector_accuracy: float
    """Two-face scenes: detected with each box on its own face."""
    fallback_accuracy: float | None
    """0, 1 and 3 faces: the halves fallback taken."""
    boxes_accuracy: float
    """Two-face scenes: the boxes returned (detected, else the halves) on their own faces."""
    halves_accuracy: float
    """The baseline: the halves on the two-face scenes."""
    overall: Row
    by_size: list[Row]
    by_kind: list[Row]
    by_face: list[Row]
    """Two-face scenes by their smaller face's share of the short side."""
    scenes: list[SceneResult]


def measure(scene: Scene, path: Path, repeats: int) -> SceneResult:
    """Decode and detector in turn, `repeats` times: a busy machine slows both alike."""
    decode, detect = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        with Image.open(path) as source:
            source.convert("L")
        decode.append(time.perf_counter() - start)
        start = time.perf_counter()
        found = find_speakers(path)
        detect.append(time.perf_counter() - start)
    two = len(scene.faces) == 2
    return SceneResult(
        index=scene.index,
        size=scene.size,
        kind=scene.kind,
        background=scene.background,
        centres=[(face.x, face.y) for face in scene.faces],
        face_shares=scene.face_shares(),
        source=found.source,
        boxes=found.boxes,
        detector_correct=(
            found.source is BoxSource.DETECTED and assigned(found, scene)
            if two
            else found.source is BoxSource.HALVES
        ),
        boxes_correct=assigned(found, scene) if two else None,
        halves_correct=assigned(halves(scene.width, scene.height), scene) if two else None,
        seconds=statistics.median(detect),
        decode_seconds=statistics.median(decode),
    )


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest rank: a value that was measured."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def row(group: str, results: Sequence[SceneResult]) -> Row:
    seconds = [result.seconds for result in results]
    decode = statistics.median(result.decode_seconds for result in results)
    pairs = [result for result in results if result.halves_correct is not None]
    return Row(
        group=group,
        scenes=len(results),
        detector_correct=sum(result.detector_correct for result in results),
        two_face_scenes=len(pairs),
        boxes_correct=sum(bool(result.boxes_correct) for result in pairs),
        halves_correct=sum(bool(result.halves_correct) for result in pairs),
        median_seconds=statistics.median(seconds),
        p95_seconds=percentile(seconds, 0.95),
        decode_median_seconds=decode,
        ratio=statistics.median(seconds) / decode,
    )


def grouped(results: Sequence[SceneResult], key: Callable[[SceneResult], str]) -> list[Row]:
    groups: dict[str, list[SceneResult]] = {}
    for result in results:
        groups.setdefault(key(result), []).append(result)
    return [row(group, members) for group, members in groups.items()]


def first_call(path: Path) -> float:
    """The process's first `find_speakers`: OpenCV must not be imported before it."""
    start = time.perf_counter()
    find_speakers(path)
    return time.perf_counter() - start


def cascade_load() -> float:
    """The median time to build the classifier `find_speakers` builds on every call."""
    import cv2

    xml = str(Path(cv2.__file__).parent / "data" / "haarcascade_frontalface_default.xml")
    times = []
    for _ in range(CASCADE_SAMPLES):
        start = time.perf_counter()
        cv2.CascadeClassifier(xml)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def face_bucket(result: SceneResult) -> str:
    smaller = min(result.face_shares)
    low = max((edge for edge in FACE_BUCKETS if edge <= smaller), default=MIN_FACE_SHARE)
    high = min((edge for edge in FACE_BUCKETS if edge > smaller), default=None)
    return f"face {low:.0%}-{high:.0%}" if high else f"face >= {low:.0%}"


def run(scenes: Sequence[Scene], folder: Path, seed: int, repeats: int) -> FacesReport:
    """Render every scene, time the first call on the first, then measure each in turn."""
    load_average = os.getloadavg()
    paths = [render(scene, folder / f"scene-{scene.index:03d}.jpg", seed) for scene in scenes]
    first = first_call(paths[0])
    results = [measure(scene, path, repeats) for scene, path in zip(scenes, paths, strict=True)]
    two = [result for result in results if result.halves_correct is not None]
    rest = [result for result in results if result.halves_correct is None]
    return FacesReport(
        seed=seed,
        repeats=repeats,
        cpus=os.cpu_count(),
        load_average=load_average,
        first_call_seconds=first,
        cascade_load_seconds=cascade_load(),
        detector_accuracy=_share(result.detector_correct for result in two),
        fallback_accuracy=_share(result.detector_correct for result in rest) if rest else None,
        boxes_accuracy=_share(bool(result.boxes_correct) for result in two),
        halves_accuracy=_share(bool(result.halves_correct) for result in two),
        overall=row("all", results),
        by_size=grouped(results, lambda result: result.size),
        by_kind=grouped(results, lambda result: result.kind),
        by_face=grouped(sorted(two, key=lambda result: min(result.face_shares)), face_bucket),
        scenes=results,
    )


def _share(flags: Iterable[bool]) -> float:
    values = list(flags)
    return sum(values) / len(values) if values else 0.0


def table(rows: Sequence[Row], heading: str) -> str:
    lines = [
        f"| {heading} | n | detector right | 2 faces: boxes right | halves right | "
        "median ms | p95 ms | decode ms | ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for entry in rows:
        pairs = entry.two_face_scenes
        boxes = f"{entry.boxes_correct}/{pairs}" if pairs else "-"
        halves_cell = f"{entry.halves_correct}/{pairs}" if pairs else "-"
        lines.append(
            f"| {entry.group} | {entry.scenes} | {entry.detector_correct}/{entry.scenes} | "
            f"{boxes} | {halves_cell} | {entry.median_seconds * 1000:.1f} | "
            f"{entry.p95_seconds * 1000:.1f} | {entry.decode_median_seconds * 1000:.1f} | "
            f"{entry.ratio:.1f}x |"
        )
    return "\n".join(lines)


def summary(report: FacesReport) -> str:
    """The tables, the headline figures and every scene the detector got wrong."""
    fallback = f"{report.fallback_accuracy:.0%}" if report.fallback_accuracy is not None else "-"
    lines = [
        f"{report.overall.scenes} scenes (seed {report.seed}, median of {report.repeats} "
        f"each; {report.cpus} CPUs, load average {report.load_average[0]:.1f})",
        table([*report.by_size, report.overall], "picture"),
        "",
        table(report.by_kind, "scenes"),
        "",
        table(report.by_face, "2 faces, smaller"),
        "",
        f"two faces: detector right {report.detector_accuracy:.0%}, boxes returned right "
        f"{report.boxes_accuracy:.0%}, halves right {report.halves_accuracy:.0%}; "
        f"0, 1 or 3 faces: halves fallback {fallback}",
        f"per image: median {report.overall.median_seconds * 1000:.1f} ms, p95 "
        f"{report.overall.p95_seconds * 1000:.1f} ms, {report.overall.ratio:.1f}x decoding "
        f"it; first call {report.first_call_seconds * 1000:.0f} ms (the same image later "
        f"{report.scenes[0].seconds * 1000:.0f} ms); the cascade, built on every call, "
        f"{report.cascade_load_seconds * 1000:.1f} ms",
    ]
    for result in report.scenes:
        if not result.detector_correct:
            shares = ", ".join(f"{share:.0%}" for share in result.face_shares)
            lines.append(
                f"wrong: scene {result.index} ({result.size}, {result.kind}, "
                f"{result.background}; faces {shares} of the short side at {result.centres}): "
                f"{result.source.value} {list(result.boxes)}"
            )
    return "\n".join(lines)


def _sizes(raw: str) -> list[tuple[int, int]]:
    try:
        sizes = [tuple(int(v) for v in part.split("x")) for part in raw.split(",")]
    except ValueError:
        sizes = []
    if not sizes or any(len(size) != 2 or min(size) < 64 for size in sizes):
        raise argparse.ArgumentTypeError(f"{raw!r}: WIDTHxHEIGHT[,...], each side >= 64")
    return [(size[0], size[1]) for size in sizes]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.faces", description=__doc__.split("\n")[0])
    parser.add_argument("--scenes", type=int, default=48, help="two-face scenes")
    parser.add_argument("--others", type=int, default=12, help="scenes with 0, 1 or 3 faces")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="timings per scene")
    parser.add_argument("--sizes", type=_sizes, default=list(SIZES), help="e.g. 480x240,960x540")
    parser.add_argument("--json", type=Path, help="also write the report here")
    parser.add_argument("--keep", type=Path, help="render the scenes here, not in a temp dir")
    args = parser.parse_args(argv)
    if args.scenes + args.others < 1 or args.repeats < 1:
        parser.error("at least one scene and one repeat")
    scenes = compose(args.seed, args.scenes, args.others, args.sizes)
    with tempfile.TemporaryDirectory() as temporary:
        folder = args.keep or Path(temporary)
        folder.mkdir(parents=True, exist_ok=True)
        report = run(scenes, folder, args.seed, args.repeats)
    print(summary(report))
    if args.json:
        args.json.write_text(report.model_dump_json(indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
