"""Schemathesis, every check, against a live edge and a preview agent: each document must
describe every response the edge sends. The public document runs every phase, and its
stateful phase must create real jobs and follow their links; the agent document, whose
jobs no operation of its own creates, runs the phases that need none."""

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.e2e.conftest import API_KEY, ROOT, Stack

HERE = Path(__file__).resolve().parent


def schemathesis(stack: Stack, document: str, token: str, tmp_path: Path, *options: str) -> Any:
    """Runs it over `document`; its HAR log of every exchange, once it passed."""
    har = tmp_path / "exchanges.har"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(HERE / "schemathesis.toml"),
            "run",
            f"{stack.url}{document}",
            "--checks",
            "all",
            *options,
            "--header",
            f"Authorization: Bearer {token}",
            "--no-color",
            "--report",
            "har",
            "--report-har-path",
            str(har),
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
    return summary, json.loads(har.read_text())["log"]["entries"]


def test_the_edge_conforms_to_its_public_document(
    stack_factory: Callable[..., Stack], tmp_path: Path
) -> None:
    # Schemathesis sends thousands of requests from one key: lift its per-key limits (their
    # 429 is documented; tests/edge_worker/test_quotas.py checks them).
    stack = stack_factory(RATE_LIMIT_PER_MINUTE="1000000", MAX_ACTIVE_JOBS_PER_KEY="1000000")
    stack.start_agent()
    # `DELETE /jobs/{job_id}` cancels, it does not delete: the job and what hangs under it
    # (its event stream, `/jobs/{job_id}/webhooks`) stay readable (API.md), which
    # `use_after_free` takes for a deleted resource still served.
    summary, exchanges = schemathesis(
        stack, "/schema/openapi.json", API_KEY, tmp_path, "--exclude-checks", "use_after_free"
    )
    for phase in ("Coverage", "Fuzzing", "Stateful"):  # the document has no examples to run
        assert f"✅ {phase}" in summary, summary
    created = {
        json.loads(exchange["response"]["content"]["text"])["job_id"]
        for exchange in exchanges
        if exchange["request"]["method"] == "POST"
        and exchange["request"]["url"].endswith("/generate")
        and exchange["response"]["status"] == 200
    }
    assert created, "createJob never succeeded"
    followed = Counter(
        (exchange["request"]["method"], exchange["request"]["url"].split("/")[-2])
        for exchange in exchanges
        if exchange["request"]["url"].rsplit("/", 1)[-1] in created
        and exchange["response"]["status"] < 400
    )
    assert {("GET", "status"), ("DELETE", "jobs")} <= followed.keys(), followed


def test_the_agent_routes_conform_to_their_document(stack: Stack, tmp_path: Path) -> None:
    summary, _ = schemathesis(
        stack,
        "/schema/agent/openapi.json",
        stack.env["AGENT_TOKEN"],
        tmp_path,
        "--phases",
        "coverage,fuzzing",
        "--max-examples",
        "5",
    )
    for phase in ("Coverage", "Fuzzing"):
        assert f"✅ {phase}" in summary, summary
