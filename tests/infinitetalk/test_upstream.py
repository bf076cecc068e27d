"""Facts about upstream at the pinned commit: sizes, chunks, embedding length, checkouts."""

import re
from pathlib import Path

import pytest

from contracts import Resolution
from infinitetalk.upstream import pinned


def test_pin_is_a_full_commit_hash() -> None:
    assert re.fullmatch(r"[0-9a-f]{40}", pinned.UPSTREAM_COMMIT)


@pytest.mark.parametrize(
    ("width", "height", "resolution", "expected"),
    [
        (512, 640, Resolution.P480, (576, 704)),  # 1.25 -> key 1.22
        (512, 640, Resolution.P720, (832, 1088)),  # 1.25 -> key 1.31
        (1280, 720, Resolution.P480, (896, 448)),  # 0.5625 -> key 0.50
        (1280, 720, Resolution.P720, (1280, 704)),  # 0.5625 -> key 0.55
        (640, 640, Resolution.P480, (640, 640)),
        (960, 960, Resolution.P720, (960, 960)),
        (100, 10000, Resolution.P480, (320, 1280)),  # past the table: the tallest bucket
    ],
)
def test_output_size_is_the_nearest_bucket(
    width: int, height: int, resolution: Resolution, expected: tuple[int, int]
) -> None:
    assert pinned.output_size(width, height, resolution) == expected


def test_output_size_tie_goes_to_the_first_bucket() -> None:
    # 0.94 is exactly between 0.88 and 1.00 (720p): upstream's sort keeps the first.
    assert pinned.output_size(1000, 940, Resolution.P720) == (1024, 896)


def test_output_size_refuses_empty_images() -> None:
    with pytest.raises(ValueError, match="positive"):
        pinned.output_size(0, 10, Resolution.P480)


@pytest.mark.parametrize(
    ("frames", "chunks"),
    [(10, 1), (81, 1), (82, 2), (153, 2), (154, 3), (225, 3), (1500, 21), (1521, 21), (1522, 22)],
)
def test_chunk_count_follows_the_streaming_loop(frames: int, chunks: int) -> None:
    assert pinned.chunk_count(frames) == chunks


def test_embedding_frames_truncate_like_get_embedding() -> None:
    assert pinned.embedding_frames(6.0) == 150
    assert pinned.embedding_frames(3.2799) == 81
    assert pinned.embedding_frames(3.28) == 82  # no float artefact loses the frame


def _git(tmp_path: Path, head: str, files: dict[str, str]) -> Path:
    git = tmp_path / ".git"
    git.mkdir()
    (git / "HEAD").write_text(head)
    for name, text in files.items():
        (git / name).parent.mkdir(parents=True, exist_ok=True)
        (git / name).write_text(text)
    return tmp_path


def test_checkout_commit_reads_a_detached_head(tmp_path: Path) -> None:
    checkout = _git(tmp_path, pinned.UPSTREAM_COMMIT + "\n", {})
    assert pinned.checkout_commit(checkout) == pinned.UPSTREAM_COMMIT


def test_checkout_commit_follows_a_branch_ref(tmp_path: Path) -> None:
    checkout = _git(tmp_path, "ref: refs/heads/main\n", {"refs/heads/main": "abc123\n"})
    assert pinned.checkout_commit(checkout) == "abc123"


def test_checkout_commit_reads_packed_refs(tmp_path: Path) -> None:
    packed = "# pack-refs with: peeled\nfff000 refs/heads/other\ndef456 refs/heads/main\n"
    checkout = _git(tmp_path, "ref: refs/heads/main\n", {"packed-refs": packed})
    assert pinned.checkout_commit(checkout) == "def456"


def test_checkout_commit_is_unknown_without_git(tmp_path: Path) -> None:
    assert pinned.checkout_commit(tmp_path) is None
    _git(tmp_path, "ref: refs/heads/gone\n", {"packed-refs": ""})
    assert pinned.checkout_commit(tmp_path) is None
