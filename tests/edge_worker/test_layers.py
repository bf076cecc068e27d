"""The layers' import rules (docs/ARCHITECTURE.md): the domain and the use cases run without
the web framework or any storage client, and adapters never reach into the routes."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import importlib, json, pkgutil, sys
for blocked in sys.argv[2].split(","):
    sys.modules[blocked] = None  # importing it now raises ImportError
for name in sys.argv[1].split(","):
    package = importlib.import_module(name)
    for info in pkgutil.walk_packages(getattr(package, "__path__", []), name + "."):
        importlib.import_module(info.name)
print(json.dumps(sorted(sys.modules)))
"""


def imported(packages: list[str], blocked: tuple[str, ...] = ()) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, ",".join(packages), ",".join(blocked)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_domain_and_use_cases_need_no_framework_or_storage_client() -> None:
    modules = imported(
        ["edge_worker.domain", "edge_worker.usecases", "edge_worker.ports", "edge_worker.auth"],
        ("litestar", "sqlite3", "_sqlite3", "js", "boto3", "multipart"),
    )
    assert "edge_worker.usecases.maintenance" in modules
    assert not [m for m in modules if m.startswith(("edge_worker.http", "edge_worker.adapters"))]


def test_adapters_do_not_import_routes_or_the_http_layer() -> None:
    modules = imported(["edge_worker.adapters"])
    assert "edge_worker.adapters.sql_job_store" in modules
    assert not [m for m in modules if m.startswith(("edge_worker.routes", "edge_worker.http"))]
