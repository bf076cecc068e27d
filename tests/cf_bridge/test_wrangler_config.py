"""The repository's wrangler.toml, checked by the pinned wrangler itself, offline:
its D1 migrations apply, and a dry-run deploy bundles the Worker (its staged sources and
the python_modules/ of `make worker-bundle`) with its bindings, under the size cap."""

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from edge_worker import worker
from scripts import stage_worker, vendor_worker
from tests.cf_bridge.bridge import ROOT, run_wrangler


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    outdir = tmp_path_factory.mktemp("worker-bundle")
    return run_wrangler("deploy", "--dry-run", "--outdir", str(outdir)), outdir


def test_d1_migrations_apply_to_a_fresh_local_database(tmp_path: Path) -> None:
    output = run_wrangler(
        "d1", "migrations", "apply", "DB", "--local", "--persist-to", str(tmp_path)
    )
    migrations = sorted(path.name for path in (ROOT / "migrations").glob("*.sql"))
    assert migrations and all(name in output for name in migrations)
    again = run_wrangler(
        "d1", "migrations", "apply", "DB", "--local", "--persist-to", str(tmp_path)
    )
    assert "No migrations to apply" in again


def test_dry_run_deploy_lists_the_d1_r2_and_queue_bindings(dry_run: tuple[str, Path]) -> None:
    output, _ = dry_run
    assert "env.DB (avatar-jobs)" in output and "D1 Database" in output
    assert "env.BUCKET (avatar-media)" in output and "R2 Bucket" in output
    assert "env.JOBS (avatar-jobs)" in output and "Queue" in output
    assert "--dry-run: exiting now." in output


def test_the_bundle_holds_the_worker_packages_and_nothing_else(dry_run: tuple[str, Path]) -> None:
    _, outdir = dry_run
    modules = {path.relative_to(outdir).as_posix() for path in outdir.rglob("*.py")}
    own = {module for module in modules if not module.startswith("python_modules/")}
    assert {"worker_entry.py", "edge_worker/worker.py", "contracts/queue.py"} <= own
    assert {
        "edge_worker/adapters/cloudflare/d1_executor.py",
        "edge_worker/adapters/sql_job_store.py",
    } <= own
    assert {module.split("/")[0] for module in own} == {
        "worker_entry.py",
        "edge_worker",
        "contracts",
    }
    assert not any(module.startswith("edge_worker/adapters/local/") for module in own)
    assert "edge_worker/local.py" not in own


def test_the_bundle_uploads_the_playground_files(dry_run: tuple[str, Path]) -> None:
    """wrangler.toml's Text rule: the page, script and style the app reads as it imports."""
    _, outdir = dry_run
    staged = stage_worker.TARGET / "edge_worker" / "static" / "playground"
    uploaded = outdir / "edge_worker" / "static" / "playground"
    for name in ("index.html", "playground.js", "playground.css"):
        assert (uploaded / name).read_bytes() == (staged / name).read_bytes(), name


def test_the_bundle_uploads_the_vendored_packages(dry_run: tuple[str, Path]) -> None:
    """python_modules/ (`make worker-bundle`) goes up with the sources, as built."""
    _, outdir = dry_run
    top_level = json.loads(stage_worker.BUNDLE_STAMP.read_text())["top_level"]
    uploaded = {path.name for path in (outdir / "python_modules").iterdir()}
    assert {name for name in uploaded if not name.endswith(".dist-info")} == {
        name for names in top_level.values() for name in names
    }


def test_the_upload_stays_under_the_size_cap(dry_run: tuple[str, Path]) -> None:
    """wrangler's own measure of the upload, compressed, against the hard cap."""
    output, _ = dry_run
    found = re.search(r"Total Upload: ([0-9.]+) KiB / gzip: ([0-9.]+) KiB", output)
    assert found is not None, output
    assert float(found.group(2)) * 1024 <= vendor_worker.CAP_BYTES


def test_the_bundle_imports_on_its_own(dry_run: tuple[str, Path]) -> None:
    """The entry module imports from the bundle alone: nothing it needs was left out."""
    _, outdir = dry_run
    probe = (
        "import sys, worker_entry, edge_worker\n"
        f"assert edge_worker.__file__.startswith({str(outdir)!r}), edge_worker.__file__\n"
        "left = [m for m in sys.modules if m.startswith(('gpu_agent', 'infinitetalk', "
        "'edge_worker.local', 'edge_worker.adapters.local', 'uvicorn'))]\n"
        "assert not left, left\n"
        "print(worker_entry.Default.__module__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=outdir,
        env={"PYTHONPATH": str(outdir)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "edge_worker.worker"


def test_the_worker_produces_and_consumes_its_webhook_queue(dry_run: tuple[str, Path]) -> None:
    """Events go to WEBHOOKS and come back to the Worker's own `queue` handler, with room
    for every retry the edge's schedule makes (it gives up by its own count)."""
    output, _ = dry_run
    assert "env.WEBHOOKS (avatar-webhooks)" in output
    config = tomllib.loads((ROOT / "wrangler.toml").read_text())
    (consumer,) = config["queues"]["consumers"]
    assert consumer["queue"] == "avatar-webhooks"
    assert consumer["max_retries"] >= 18  # the default schedule: 18 attempts over 1 h
    assert callable(getattr(worker.Default, "queue", None))
