"""Schemathesis, every check and phase (stateful included), against a live edge and a
preview agent: the document must describe every response the edge sends."""

import os
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import API_KEY, ROOT, Stack

HERE = Path(__file__).resolve().parent


def test_the_edge_conforms_to_its_document(stack: Stack, tmp_path: Path) -> None:
    stack.start_agent()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(HERE / "schemathesis.toml"),
            "run",
            f"{stack.url}/schema/openapi.json",
            "--checks",
            "all",
            "--header",
            f"Authorization: Bearer {API_KEY}",
            "--no-color",
            "--report-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        # Its cache folder lands in the working directory; the hooks import from the root.
        cwd=tmp_path,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        },
    )
    summary = result.stdout[-6000:]
    assert result.returncode == 0, f"{summary}\n{result.stderr[-2000:]}\n{stack.logs()}"
    for phase in ("Coverage", "Fuzzing", "Stateful"):  # the document has no examples to run
        assert f"✅ {phase}" in result.stdout, summary
