"""Vendor the Worker's Python packages into python_modules/, with pywrangler (needs uv and
the network: it downloads a Pyodide interpreter and wheels built for it).

`pywrangler sync` installs a project's `[project.dependencies]`, built for Pyodide, next to
its wrangler config, where `wrangler deploy` uploads them. This repository's dependencies
are the whole distribution's (the agent's PyAV and NumPy among them), so pywrangler runs on
a scratch project in build/pywrangler/ that lists only what the Worker imports, with the
version ranges of pyproject.toml, and its python_modules/ is moved next to wrangler.toml.
The scratch project keeps pywrangler's pylock.toml, so re-running keeps the same versions.
"""

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRATCH = ROOT / "build" / "pywrangler"
WORKER_PACKAGES = ("litestar", "pydantic", "multipart")
# The binding wrapper (Python values in and out of D1, R2 and Queues) and the ASGI bridge
# this Worker relies on; pywrangler adds the SDK anyway, this sets its floor.
RUNTIME_SDK = "workers-runtime-sdk>=1.6.15"
PYWRANGLER = "workers-py==1.16.7"


def requirement_name(requirement: str) -> str:
    name = re.match(r"[A-Za-z0-9._-]+", requirement)
    return name.group(0).lower().replace("_", "-") if name else ""


def worker_requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """The Worker's packages, as pyproject.toml constrains them, plus the runtime SDK."""
    dependencies = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    chosen = [dep for dep in dependencies if requirement_name(dep) in WORKER_PACKAGES]
    missing = set(WORKER_PACKAGES) - {requirement_name(dep) for dep in chosen}
    if missing:
        raise SystemExit(f"pyproject.toml no longer lists {sorted(missing)}")
    return [*chosen, RUNTIME_SDK]


def write_scratch_project(scratch: Path = SCRATCH, root: Path = ROOT) -> None:
    """pywrangler wants a pyproject.toml and the wrangler config (for the Python version)."""
    scratch.mkdir(parents=True, exist_ok=True)
    requirements = worker_requirements(root / "pyproject.toml")
    listed = "".join(f'    "{requirement}",\n' for requirement in requirements)
    (scratch / "pyproject.toml").write_text(
        '[project]\nname = "avatar-edge-worker"\nversion = "0.0.0"\n'
        f'requires-python = ">=3.12"\ndependencies = [\n{listed}]\n'
    )
    shutil.copyfile(root / "wrangler.toml", scratch / "wrangler.toml")


def main() -> int:
    if shutil.which("uvx") is None:
        print("vendor_worker: needs uv (https://docs.astral.sh/uv/)", file=sys.stderr)
        return 2
    write_scratch_project(SCRATCH, ROOT)
    synced = subprocess.run(
        ["uvx", "--from", PYWRANGLER, "pywrangler", "sync", "--force"], cwd=SCRATCH, check=False
    )
    if synced.returncode != 0:
        return synced.returncode
    shutil.rmtree(ROOT / "python_modules", ignore_errors=True)
    shutil.move(SCRATCH / "python_modules", ROOT / "python_modules")
    print("vendored the Worker's packages into python_modules/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
