"""`pip install <repo>` with no extras is the client alone: httpx and pydantic, no server."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.e2e.conftest import ROOT

SERVER_PACKAGES = {"litestar", "av", "numpy", "pillow", "uvicorn", "pydantic-settings", "tqdm"}


def test_the_repository_installs_as_a_client_without_the_server(tmp_path: Path) -> None:
    started = time.monotonic()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python, avatar = venv / "bin" / "python", venv / "bin" / "avatar"

    # Without PYTHONPATH, so that the installed copy is what runs, not this checkout.
    env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}

    def run(*argv: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(a) for a in argv],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
            env=env,
        )

    # pip's own cache (the user's) keeps this fast after the first run.
    installed = run(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", ROOT)
    assert installed.returncode == 0, installed.stderr
    listed = run(python, "-m", "pip", "list", "--format=json", "--disable-pip-version-check")
    names = {package["name"].lower() for package in json.loads(listed.stdout)}
    assert {"infinite-avatar", "httpx", "pydantic"} <= names
    assert not names & SERVER_PACKAGES, names & SERVER_PACKAGES

    imported = run(
        python, "-c", "import avatar_client, avatar_client.errors; print(avatar_client.__all__)"
    )
    assert imported.returncode == 0 and "AvatarClient" in imported.stdout, imported.stderr
    helped = run(avatar, "--help")
    assert helped.returncode == 0 and "generate" in helped.stdout, helped.stderr
    dev = run(avatar, "dev")
    assert dev.returncode == 1
    assert "pip install 'infinite-avatar[edge,agent]'" in dev.stdout + dev.stderr
    # the wheel carries the edge's data files: the playground the edge reads as it imports
    playground = run(
        python,
        "-c",
        "import importlib.util, pathlib; "
        "spec = importlib.util.find_spec('edge_worker'); "
        "folder = pathlib.Path(spec.origin).parent / 'static' / 'playground'; "
        "print(*sorted(path.name for path in folder.iterdir()))",
    )
    assert playground.stdout.split() == ["index.html", "playground.css", "playground.js"], (
        playground.stderr
    )
    print(f"\nclient-only install and checks in {time.monotonic() - started:.1f} s")
