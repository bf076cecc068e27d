"""Upstream imports on Python 3.11+: the ArgSpec shim, how each mode gets it, the self-check.

The real upstream source runs through all of this in tests/upstream_smoke; these tests
pin the mechanism itself in the project's own environment.
"""

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infinitetalk.upstream import check, compat, pinned
from infinitetalk.upstream.subprocess_mode import SITE_DIR, upstream_env

STANDIN = Path(__file__).resolve().parents[1] / "fixtures" / "infinitetalk_standin"


def test_install_puts_back_the_argspec_that_python_3_11_removed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(inspect, "ArgSpec", raising=False)
    compat.install()
    spec = inspect.ArgSpec(["a"], None, None, ())  # type: ignore[attr-defined]
    assert spec._fields == ("args", "varargs", "keywords", "defaults")


def test_install_leaves_an_existing_argspec_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    marker = object()
    monkeypatch.setattr(inspect, "ArgSpec", marker, raising=False)
    compat.install()
    assert inspect.ArgSpec is marker  # type: ignore[attr-defined]


def test_upstream_subprocess_starts_with_the_shim_applied() -> None:
    """What subprocess mode hands upstream's interpreter: the site folder first on its path."""
    env = upstream_env({**os.environ, "PYTHONPATH": "/elsewhere"})
    assert env["PYTHONPATH"] == f"{SITE_DIR}{os.pathsep}/elsewhere"
    assert env["PYTHONUNBUFFERED"] == "1"
    probe = "import inspect; print(inspect.ArgSpec._fields)"
    result = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "('args', 'varargs', 'keywords', 'defaults')"


def test_upstream_env_without_a_pythonpath_has_only_the_site_folder() -> None:
    assert upstream_env({"HOME": "/root"})["PYTHONPATH"] == str(SITE_DIR)


def test_self_check_imports_both_modes_entry_points(
    standin_imports: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkout = tmp_path / "InfiniteTalk"
    checkout.symlink_to(STANDIN, target_is_directory=True)
    check.main([str(checkout)])
    report = json.loads(capsys.readouterr().out)
    assert report["imported"] == ["wan", "wan.multitalk", "generate_infinitetalk"]
    assert report["upstream_dir"] == str(STANDIN)
    assert report["commit"] is None  # the stand-in is no checkout
    assert report["python"] == ".".join(map(str, sys.version_info[:3]))
    assert report["diffusers"] is None  # not in the project's own environment


def test_self_check_reads_the_directory_from_the_environment(
    standin_imports: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("INFINITETALK_DIR", str(STANDIN))
    check.main([])
    assert json.loads(capsys.readouterr().out)["upstream_dir"] == str(STANDIN)


def test_an_archive_checkout_is_known_by_its_stamp(tmp_path: Path) -> None:
    (tmp_path / pinned.COMMIT_STAMP).write_text(pinned.UPSTREAM_COMMIT + "\n")
    assert pinned.checkout_commit(tmp_path) == pinned.UPSTREAM_COMMIT
    (tmp_path / pinned.COMMIT_STAMP).unlink()
    assert pinned.checkout_commit(tmp_path) is None
