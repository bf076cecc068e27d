"""Build the deployable Worker (`make worker-bundle`): its sources staged in build/worker/ and
its Python packages, for Pyodide 314, in python_modules/ next to wrangler.toml, where
`wrangler deploy` uploads them.

The packages come from PyPI alone, as requirements/worker-pyodide.txt pins them (with hashes):
pip downloads them for the `pyemscripten_2026_0_wasm32` platform, which brings PyPI's wasm
wheels of pydantic-core and msgspec; PyYAML has no wasm wheel, so its sdist is built into a
pure-Python one. The wheels are cached in .cache/worker-wheels/<lock digest>/, so rebuilding
after a change to the sources needs no network. What the Worker never reads (bytecode caches,
type stubs, wheel RECORDs) stays out of python_modules/.

Run as `python -m scripts.vendor_worker` from the repository root.
"""

import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from scripts import stage_worker

ROOT = stage_worker.ROOT
CACHE = ROOT / ".cache" / "worker-wheels"
PLATFORM = "pyemscripten_2026_0_wasm32"
PYTHON_VERSION = "3.14"
# Distributions without a wheel for PLATFORM, built here from their sdist, with the settings
# that keep them pure Python.
FROM_SOURCE = {"pyyaml": {"PYYAML_FORCE_LIBYAML": "0"}}
SKIPPED_SUFFIXES = (".pyc", ".pyi")
SKIPPED_NAMES = {"py.typed", "RECORD"}
# The goal (the free plan's compressed Worker size) and the hard cap tests/pyodide enforces.
GOAL_BYTES = 3 * 1024 * 1024
CAP_BYTES = 10 * 1024 * 1024


def pip(*args: str, env: dict[str, str] | None = None) -> None:
    subprocess.run([sys.executable, "-m", "pip", *args], check=True, env=env)


def download(lock: Path, target: Path) -> None:
    """The locked files, hash-checked: wasm or pure wheels, and sdists for FROM_SOURCE."""
    pip(
        "download",
        "--quiet",
        "--no-deps",
        "--require-hashes",
        "--platform",
        PLATFORM,
        "--python-version",
        PYTHON_VERSION,
        "--only-binary=:all:",
        f"--no-binary={','.join(FROM_SOURCE)}",
        "--requirement",
        str(lock),
        "--dest",
        str(target),
    )


def build_from_source(target: Path) -> None:
    """Replace each downloaded sdist by a pure-Python wheel built from it."""
    for sdist in sorted(target.glob("*.tar.gz")):
        name = sdist.name.split("-")[0].lower()
        pip(
            "wheel",
            "--quiet",
            "--no-deps",
            "--wheel-dir",
            str(target),
            str(sdist),
            env={**os.environ, **FROM_SOURCE.get(name, {})},
        )
        sdist.unlink()
    built = [
        wheel.name for wheel in target.glob("*.whl") if distribution_name(wheel) in FROM_SOURCE
    ]
    impure = [name for name in built if not name.endswith("-py3-none-any.whl")]
    if impure:
        raise SystemExit(f"vendor_worker: built wheels are not pure Python: {impure}")


def cached_wheels(lock: Path, cache: Path) -> list[Path]:
    """The lock's wheels, from the cache or fetched into it (completely, or not at all)."""
    folder = cache / stage_worker.lock_digest(lock)[:16]
    if not folder.is_dir():
        cache.mkdir(parents=True, exist_ok=True)
        fresh = Path(tempfile.mkdtemp(prefix=".fetch-", dir=cache))
        try:
            download(lock, fresh)
            build_from_source(fresh)
            fresh.rename(folder)
        finally:
            shutil.rmtree(fresh, ignore_errors=True)
    return sorted(folder.glob("*.whl"))


def kept(name: str) -> bool:
    parts = name.split("/")
    return (
        "__pycache__" not in parts
        and parts[-1] not in SKIPPED_NAMES
        and not parts[-1].endswith(SKIPPED_SUFFIXES)
    )


def distribution_name(wheel: Path) -> str:
    return wheel.name.split("-")[0].lower().replace("_", "-")


def unpack(wheels: list[Path], target: Path) -> dict[str, list[str]]:
    """Replace `target` with the wheels' files; returns each distribution's top-level names."""
    fresh = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    fresh.chmod(0o755)
    top_level: dict[str, list[str]] = {}
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            names = [name for name in archive.namelist() if kept(name)]
            for name in names:
                archive.extract(name, fresh)
        tops = {
            name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")
        }
        top_level[distribution_name(wheel)] = sorted(tops)
    old = fresh.with_name(f"{fresh.name}-old")
    if target.exists():
        target.rename(old)
    fresh.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return top_level


def bundle_files(*folders: Path) -> list[Path]:
    return sorted(path for folder in folders for path in folder.rglob("*") if path.is_file())


def bundle_size(*folders: Path) -> tuple[int, int]:
    """(bytes, gzip bytes) of the upload, measured as wrangler does: every module's content
    concatenated and gzipped at zlib's default level."""
    data = b"".join(path.read_bytes() for path in bundle_files(*folders))
    return len(data), len(gzip.compress(data, compresslevel=6))


def main() -> int:
    lock, vendored, staged = stage_worker.LOCK, stage_worker.VENDORED, stage_worker.TARGET
    top_level = unpack(cached_wheels(lock, CACHE), vendored)
    stage_worker.stage(stage_worker.ROOT, staged)
    stage_worker.BUNDLE_STAMP.parent.mkdir(parents=True, exist_ok=True)
    stage_worker.BUNDLE_STAMP.write_text(
        json.dumps({"lock": stage_worker.lock_digest(lock), "top_level": top_level}, indent=1)
    )
    files = bundle_files(staged, vendored)
    size, compressed = bundle_size(staged, vendored)
    mib = 1024 * 1024
    print(f"worker bundle: {', '.join(sorted(top_level))}")
    print(
        f"worker bundle: {len(files)} files, {size / mib:.2f} MiB, compressed "
        f"{compressed / mib:.2f} MiB (goal {GOAL_BYTES / mib:g} MiB, cap {CAP_BYTES / mib:g} MiB)"
    )
    if compressed > CAP_BYTES:
        print("vendor_worker: the bundle is over the cap", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
