"""scripts/stage_worker.py (the Worker's sources) and scripts/vendor_worker.py (its
Pyodide packages, through pywrangler), without the network."""

import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from scripts import stage_worker, vendor_worker


def test_stage_copies_the_worker_packages_without_the_local_runtime(tmp_path: Path) -> None:
    written = {path.as_posix() for path in stage_worker.stage(target=tmp_path / "worker")}
    assert {"worker_entry.py", "edge_worker/worker.py", "contracts/__init__.py"} <= written
    assert not any("adapters/local" in path or path == "edge_worker/local.py" for path in written)
    entry = (tmp_path / "worker" / "worker_entry.py").read_text()
    assert "from edge_worker.worker import Default" in entry
    stale = tmp_path / "worker" / "edge_worker" / "stale.py"
    stale.write_text("")
    stage_worker.stage(target=tmp_path / "worker")
    assert not stale.exists()


def test_the_worker_requirements_come_from_pyproject() -> None:
    requirements = vendor_worker.worker_requirements()
    names = [vendor_worker.requirement_name(r) for r in requirements]
    assert names == ["litestar", "pydantic", "multipart", "workers-runtime-sdk"]
    assert any(r.startswith("litestar>=") for r in requirements)


def test_a_dependency_dropped_from_pyproject_is_reported(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\ndependencies = ["litestar>=2", "uvicorn"]\n')
    with pytest.raises(SystemExit, match="multipart"):
        vendor_worker.worker_requirements(pyproject)


def test_the_scratch_project_is_what_pywrangler_reads(tmp_path: Path) -> None:
    vendor_worker.write_scratch_project(tmp_path)
    project = tomllib.loads((tmp_path / "pyproject.toml").read_text())["project"]
    assert project["dependencies"] == vendor_worker.worker_requirements()
    copied = tomllib.loads((tmp_path / "wrangler.toml").read_text())
    assert copied["compatibility_flags"] == ["python_workers"]


def test_vendoring_moves_pywrangler_output_next_to_wrangler_toml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, scratch = tmp_path / "repo", tmp_path / "repo" / "build" / "pywrangler"
    root.mkdir()
    for name in ("pyproject.toml", "wrangler.toml"):
        shutil.copyfile(vendor_worker.ROOT / name, root / name)
    (root / "python_modules" / "old").mkdir(parents=True)
    monkeypatch.setattr(vendor_worker, "ROOT", root)
    monkeypatch.setattr(vendor_worker, "SCRATCH", scratch)
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")

    def sync(command: list[str], cwd: Path, check: bool) -> subprocess.CompletedProcess[str]:
        assert command[:3] == ["uvx", "--from", vendor_worker.PYWRANGLER]
        (cwd / "python_modules" / "litestar").mkdir(parents=True)
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(subprocess, "run", sync)
    assert vendor_worker.main() == 0
    assert sorted(p.name for p in (root / "python_modules").iterdir()) == ["litestar"]


def test_vendoring_needs_uv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert vendor_worker.main() == 2
