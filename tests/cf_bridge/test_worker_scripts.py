"""scripts/stage_worker.py (the Worker's sources, and the deploy's check of its packages) and
scripts/vendor_worker.py (its packages for Pyodide 314, from the lock), without the network:
pip is replaced by a stand-in that writes the files a real run would."""

import json
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from scripts import stage_worker, vendor_worker

PLAYGROUND_FILES = ("index.html", "playground.js", "playground.css")


def test_stage_copies_the_worker_packages_without_the_local_runtime(tmp_path: Path) -> None:
    written = {path.as_posix() for path in stage_worker.stage(target=tmp_path / "worker")}
    assert {"worker_entry.py", "edge_worker/worker.py", "contracts/__init__.py"} <= written
    assert not any("adapters/local" in path or path == "edge_worker/local.py" for path in written)
    playground = {f"edge_worker/static/playground/{name}" for name in PLAYGROUND_FILES}
    assert playground <= written, "the app reads the playground's files as it imports"
    entry = (tmp_path / "worker" / "worker_entry.py").read_text()
    assert "from edge_worker.worker import Default" in entry
    stale = tmp_path / "worker" / "edge_worker" / "stale.py"
    stale.write_text("")
    stage_worker.stage(target=tmp_path / "worker")
    assert not stale.exists()


# --- the lock ---------------------------------------------------------------------------------


def locked() -> dict[str, tuple[str, str]]:
    """name -> (version, hash) of every line of requirements/worker-pyodide.txt."""
    entries = {}
    for line in stage_worker.LOCK.read_text().splitlines():
        if line and not line.startswith("#"):
            pin, option = line.split(" ", 1)
            requirement = Requirement(pin)
            (specifier,) = requirement.specifier
            assert specifier.operator == "==", line
            assert option.startswith("--hash=sha256:") and len(option) == 14 + 64, line
            entries[requirement.name] = (specifier.version, option)
    return entries


def test_the_lock_pins_every_package_with_its_hash_within_pyproject_ranges() -> None:
    entries = locked()
    assert {"litestar", "pydantic", "pydantic-core", "msgspec", "workers-runtime-sdk"} <= set(
        entries
    )
    project = tomllib.loads((stage_worker.ROOT / "pyproject.toml").read_text())["project"]
    for dependency in project["dependencies"] + project["optional-dependencies"]["edge"]:
        requirement = Requirement(dependency)
        if requirement.name in entries:
            assert requirement.specifier.contains(entries[requirement.name][0]), dependency


def test_the_lock_leaves_out_what_the_worker_never_imports() -> None:
    assert not {"click", "rich", "rich-click", "polyfactory", "faker", "httpx"} & set(locked())


# --- the deploy's check -----------------------------------------------------------------------


def write_lock(tmp_path: Path, text: str = "demo==1.0 --hash=sha256:" + "0" * 64 + "\n") -> Path:
    lock = tmp_path / "worker-pyodide.txt"
    lock.write_text(text)
    return lock


def test_the_deploy_refuses_missing_or_stale_packages(tmp_path: Path) -> None:
    lock, vendored, stamp = write_lock(tmp_path), tmp_path / "python_modules", tmp_path / "s.json"
    assert "missing" in str(stage_worker.vendored_problem(lock, vendored, stamp))
    vendored.mkdir()
    stamp.write_text(json.dumps({"lock": stage_worker.lock_digest(lock)}))
    assert stage_worker.vendored_problem(lock, vendored, stamp) is None
    write_lock(tmp_path, "demo==2.0\n")
    assert "another worker-pyodide.txt" in str(stage_worker.vendored_problem(lock, vendored, stamp))


def test_the_build_step_fails_until_the_bundle_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(stage_worker, "TARGET", tmp_path / "worker")
    monkeypatch.setattr(stage_worker, "vendored_problem", lambda *_: "python_modules/ is missing")
    assert stage_worker.main() == 1
    assert "run `make worker-bundle`" in capsys.readouterr().err
    monkeypatch.setattr(stage_worker, "vendored_problem", lambda *_: None)
    assert stage_worker.main() == 0


# --- vendoring --------------------------------------------------------------------------------


def make_wheel(folder: Path, filename: str, files: dict[str, str]) -> Path:
    wheel = folder / filename
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return wheel


DEMO_FILES = {
    "demo/__init__.py": "VALUE = 1\n",
    "demo/__init__.pyi": "VALUE: int\n",
    "demo/py.typed": "",
    "demo/__pycache__/__init__.cpython-314.pyc": "",
    "demo/_native.cpython-314-wasm32-emscripten.so": "\0asm",
    "demo-1.0.dist-info/METADATA": "Name: demo\nVersion: 1.0\n",
    "demo-1.0.dist-info/RECORD": "",
    "demo_hook.pth": "import demo\n",
}


def test_unpacking_keeps_what_the_worker_reads(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "demo-1.0-cp314-cp314-pyemscripten_2026_0_wasm32.whl", DEMO_FILES)
    target = tmp_path / "python_modules"
    (target / "old_package").mkdir(parents=True)
    top_level = vendor_worker.unpack([wheel], target)
    files = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    assert files == [
        "demo-1.0.dist-info/METADATA",
        "demo/__init__.py",
        "demo/_native.cpython-314-wasm32-emscripten.so",
        "demo_hook.pth",
    ]
    assert top_level == {"demo": ["demo", "demo_hook.pth"]}


def fake_pip(calls: list[list[str]], built: str = "pyyaml-6.0.4-py3-none-any.whl"):  # type: ignore[no-untyped-def]
    """Stands in for `python -m pip`: `download` drops a wheel and an sdist, `wheel` builds."""

    def run(command: list[str], check: bool, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
        assert command[:3] == [sys.executable, "-m", "pip"] and check
        calls.append(command[3:])
        if command[3] == "download":
            dest = Path(command[command.index("--dest") + 1])
            make_wheel(dest, "demo-1.0-py3-none-any.whl", {"demo/__init__.py": ""})
            (dest / "pyyaml-6.0.4.tar.gz").write_bytes(b"sdist")
        else:
            assert env is not None and env["PYYAML_FORCE_LIBYAML"] == "0"
            dest = Path(command[command.index("--wheel-dir") + 1])
            make_wheel(dest, built, {"yaml/__init__.py": ""})
        return subprocess.CompletedProcess(command, 0)

    return run


def test_wheels_are_fetched_for_pyodide_once_then_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []
    monkeypatch.setattr(subprocess, "run", fake_pip(calls))
    lock, cache = write_lock(tmp_path), tmp_path / "cache"
    wheels = vendor_worker.cached_wheels(lock, cache)
    assert [w.name for w in wheels] == [
        "demo-1.0-py3-none-any.whl",
        "pyyaml-6.0.4-py3-none-any.whl",
    ]
    assert wheels[0].parent.name == stage_worker.lock_digest(lock)[:16]
    download = calls[0]
    for flag in ("--no-deps", "--require-hashes", "--only-binary=:all:", "--no-binary=pyyaml"):
        assert flag in download
    assert download[download.index("--platform") + 1] == "pyemscripten_2026_0_wasm32"
    assert download[download.index("--python-version") + 1] == "3.14"
    assert [call[0] for call in calls] == ["download", "wheel"]
    assert vendor_worker.cached_wheels(lock, cache) == wheels
    assert len(calls) == 2  # the second build needs no network


def test_a_build_that_is_not_pure_python_leaves_no_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = "pyyaml-6.0.4-cp311-cp311-linux_x86_64.whl"
    monkeypatch.setattr(subprocess, "run", fake_pip([], built))
    cache = tmp_path / "cache"
    with pytest.raises(SystemExit, match="not pure Python"):
        vendor_worker.cached_wheels(write_lock(tmp_path), cache)
    assert list(cache.iterdir()) == []


def test_bundle_size_is_wranglers_measure(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n" * 1000)
    (tmp_path / "b.py").write_text("y = 2\n" * 1000)
    size, compressed = vendor_worker.bundle_size(tmp_path)
    assert size == 12000
    assert 0 < compressed < 200


def test_make_worker_bundle_stages_vendors_and_records_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(subprocess, "run", fake_pip([]))
    lock = write_lock(tmp_path)
    for name, value in {
        "LOCK": lock,
        "VENDORED": tmp_path / "python_modules",
        "TARGET": tmp_path / "worker",
        "BUNDLE_STAMP": tmp_path / "build" / "worker-bundle.json",
    }.items():
        monkeypatch.setattr(stage_worker, name, value)
    monkeypatch.setattr(vendor_worker, "CACHE", tmp_path / "cache")
    assert vendor_worker.main() == 0
    stamp = json.loads((tmp_path / "build" / "worker-bundle.json").read_text())
    assert stamp == {
        "lock": stage_worker.lock_digest(lock),
        "top_level": {"demo": ["demo"], "pyyaml": ["yaml"]},
    }
    assert (tmp_path / "worker" / "worker_entry.py").is_file()
    assert (tmp_path / "python_modules" / "yaml" / "__init__.py").is_file()
    assert "compressed" in capsys.readouterr().out
    monkeypatch.setattr(vendor_worker, "CAP_BYTES", 10)
    assert vendor_worker.main() == 1
