"""Stage the Worker's Python sources in build/worker/ (wrangler.toml's `[build]` command).

wrangler bundles every `*.py` under the main module's folder and a config cannot narrow
that rule, so the Worker gets a folder of its own holding only what it imports: the
`contracts` and `edge_worker` packages (without the local runtime) and the main module.
workerd imports the main module by its bare name, so it sits at the top of that folder.

Run as the deploy's build step, it also refuses to go on when python_modules/ (the Worker's
packages, `make worker-bundle`) is missing or was built from another lock: a deploy would
otherwise upload a Worker that cannot import, or not the packages the tests ran.
"""

import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "build" / "worker"
LOCK = ROOT / "requirements" / "worker-pyodide.txt"
VENDORED = ROOT / "python_modules"
# What scripts/vendor_worker.py last put in python_modules/: the lock's digest, the packages.
BUNDLE_STAMP = ROOT / "build" / "worker-bundle.json"
PACKAGES = ("contracts", "edge_worker")
LOCAL_ONLY = ("edge_worker/local.py", "edge_worker/admin_cli.py", "edge_worker/adapters/local")
# Files the app reads as it imports (the playground's page, script and style): wrangler.toml's
# [[rules]] upload them as Text modules, which workerd mounts beside the Python ones.
STATIC = "edge_worker/static"
ENTRY = '''"""The Worker's main module, written by scripts/stage_worker.py."""

from edge_worker.worker import Default

__all__ = ["Default"]
'''


def worker_sources(root: Path = ROOT) -> list[Path]:
    """The package files the Worker needs, relative to `root`."""
    modules = [
        path.relative_to(root)
        for package in PACKAGES
        for path in (root / package).rglob("*.py")
        if not any(path.relative_to(root).as_posix().startswith(skip) for skip in LOCAL_ONLY)
    ]
    static = [path.relative_to(root) for path in (root / STATIC).rglob("*") if path.is_file()]
    return sorted(modules + static)


def stage(root: Path = ROOT, target: Path = TARGET) -> list[Path]:
    """Replace `target` with a fresh copy of the Worker's sources; returns what it wrote.

    The copy is built beside `target` and swapped in, so a concurrent dry run in the same
    tree never reads a half-written folder.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    fresh.chmod(0o755)
    written = []
    for source in worker_sources(root):
        (fresh / source).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / source, fresh / source)
        written.append(source)
    (fresh / "worker_entry.py").write_text(ENTRY)
    old = fresh.with_name(f"{fresh.name}-old")
    if target.exists():
        target.rename(old)
    fresh.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return [*written, Path("worker_entry.py")]


def lock_digest(lock: Path = LOCK) -> str:
    return hashlib.sha256(lock.read_bytes()).hexdigest()


def vendored_problem(
    lock: Path = LOCK, vendored: Path = VENDORED, stamp: Path = BUNDLE_STAMP
) -> str | None:
    """Why python_modules/ is not the bundle of `lock`, or None when it is."""
    if not vendored.is_dir() or not stamp.is_file():
        return f"{vendored.name}/ is missing"
    if json.loads(stamp.read_text()).get("lock") != lock_digest(lock):
        return f"{vendored.name}/ was built from another {lock.name}"
    return None


def main() -> int:
    files = stage(ROOT, TARGET)
    print(f"staged {len(files)} files in {os.path.relpath(TARGET, ROOT)}")
    problem = vendored_problem(LOCK, VENDORED, BUNDLE_STAMP)
    if problem is not None:
        print(f"stage_worker: {problem}: run `make worker-bundle`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
