"""bench/faces.py on a handful of small scenes: the scenes are reproducible, the detector
puts each box on its own face where the halves would not, and falls back without two faces.
Nothing here asserts a time."""

import itertools
import json
from pathlib import Path

import pytest

from bench import faces
from bench.faces import Face, FacesReport, Scene
from contracts import BoxSource
from infinitetalk.media.faces import MIN_FACE_SHARE


def scene(index: int, size: tuple[int, int], layout: str, *placed: tuple[int, int, int]) -> Scene:
    background = faces.BACKGROUNDS[index % len(faces.BACKGROUNDS)]
    return Scene(index, *size, layout, background, tuple(Face(*f, 1.0) for f in placed))


FEW = [
    scene(0, (480, 240), "halves", (120, 120, 110), (360, 120, 110)),
    scene(1, (640, 360), "left two thirds", (110, 180, 150), (300, 170, 150)),
    scene(2, (480, 240), "offset", (130, 75, 100), (350, 165, 100)),
    scene(3, (640, 360), "anywhere", (420, 120, 120), (560, 250, 130)),
    scene(4, (480, 240), "anywhere"),
    scene(5, (480, 240), "anywhere", (200, 120, 110)),
]


def test_scenes_are_drawn_from_the_seed_inside_the_picture_and_apart() -> None:
    scenes = faces.compose(3, 16, 3)
    assert scenes == faces.compose(3, 16, 3) and scenes != faces.compose(4, 16, 3)
    assert [len(s.faces) for s in scenes] == [2] * 16 + [0, 1, 3]
    assert {s.kind for s in scenes[:16]} == {f"2 faces, {layout}" for layout in faces.LAYOUTS}
    assert {s.size for s in scenes} == {f"{w}x{h}" for w, h in faces.SIZES}
    for each in scenes:
        for face in each.faces:
            assert face.side / 2 <= face.x <= each.width - face.side / 2
            assert face.side / 2 <= face.y <= each.height - face.side / 2
        pairs = itertools.pairwise(each.faces)
        assert all(a.x + a.side / 2 <= b.x - b.side / 2 for a, b in pairs)
        assert all(MIN_FACE_SHARE - 0.005 <= share < 0.37 for share in each.face_shares())


def test_the_detector_finds_two_faces_and_falls_back_without_them(tmp_path: Path) -> None:
    report = faces.run(FEW, tmp_path, seed=1, repeats=1)
    pairs, (none, one) = report.scenes[:4], report.scenes[4:]
    assert sum(result.detector_correct for result in pairs) >= len(pairs) - 1
    assert [result.halves_correct for result in pairs] == [True, False, True, False]
    assert pairs[1].boxes_correct and pairs[3].boxes_correct  # both faces on one side
    for result in (none, one):
        assert result.source is BoxSource.HALVES and result.detector_correct
        assert result.halves_correct is result.boxes_correct is None
    assert report.fallback_accuracy == 1.0 and report.halves_accuracy == 0.5
    assert [row.group for row in report.by_size] == ["480x240", "640x360"]
    assert [row.scenes for row in report.by_kind] == [1, 1, 1, 1, 1, 1]
    assert report.overall.scenes == 6 and report.overall.two_face_scenes == 4
    assert sum(row.scenes for row in report.by_face) == 4
    assert report.first_call_seconds > 0 and report.cascade_load_seconds > 0
    assert all(result.seconds > 0 and result.decode_seconds > 0 for result in report.scenes)
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        f"scene-{i:03d}.jpg" for i in range(6)
    ]


def test_main_prints_the_tables_and_writes_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "faces.json"
    argv = ["--scenes", "2", "--others", "2", "--sizes", "480x240", "--repeats", "1"]
    assert faces.main([*argv, "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| picture | n |" in printed and "| all | 4 |" in printed
    assert "| 0 faces | 1 |" in printed and "| 1 face | 1 |" in printed
    assert "two faces: detector right" in printed
    report = FacesReport.model_validate(json.loads(out.read_text()))
    assert len(report.scenes) == 4 and report.seed == 1
    with pytest.raises(SystemExit):
        faces.main(["--sizes", "480"])
