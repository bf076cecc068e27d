"""The GPU image's self-check, run here against the real upstream source."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from infinitetalk.upstream import pinned
from tests.upstream_smoke.conftest import REPO


def image_self_check() -> list[str]:
    """The upstream import check exactly as the Dockerfile runs it before the agent."""
    match = re.search(
        r"python (-m infinitetalk\.upstream\.check)\b", (REPO / "Dockerfile").read_text()
    )
    assert match, "the Dockerfile no longer runs the upstream self-check"
    return [sys.executable, *match.group(1).split()]


def test_image_self_check_imports_upstream(upstream_dir: Path) -> None:
    result = subprocess.run(
        image_self_check(),
        env={**os.environ, "INFINITETALK_DIR": str(upstream_dir)},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["commit"] == pinned.UPSTREAM_COMMIT
    assert report["imported"] == ["wan", "wan.multitalk", "generate_infinitetalk"]
    assert report["diffusers"].startswith("0.33.")


def test_without_the_shim_upstream_does_not_import_on_this_python(upstream_dir: Path) -> None:
    """Why `upstream.compat` exists: the check above would fail without it."""
    result = subprocess.run(
        [sys.executable, "-c", "import wan"],
        cwd=upstream_dir,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode != 0
    assert "cannot import name 'ArgSpec' from 'inspect'" in result.stderr
