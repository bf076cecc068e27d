"""Shared by every test folder."""

from pathlib import Path

import pytest

# --- Test layers --------------------------------------------------------------------------
# Each test gets one layer marker (registered in pyproject's [tool.pytest.ini_options]) from
# the folder it lives in, so `make test-fast` can select `unit or contract` without a marker
# on every test. A test that already carries a layer marker keeps it. tests/upstream_smoke
# runs in its own environment (scripts/upstream_smoke.sh) and is marked here without being
# imported by the main one.

TESTS = Path(__file__).resolve().parent
LAYER_BY_FOLDER = {
    "e2e": "e2e",
    "faults": "faults",
    "pyodide": "pyodide",
    "upstream_smoke": "upstream",
    "contracts_ports": "contract",
    "cf_bridge": "contract",
}
LAYERS = frozenset({"unit", *LAYER_BY_FOLDER.values()})


def layer_of(path: Path) -> str:
    """The layer of a test file: its top folder under tests/ decides, `unit` by default."""
    folder = path.resolve().relative_to(TESTS).parts[0]
    return LAYER_BY_FOLDER.get(folder, "unit")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if not any(marker.name in LAYERS for marker in item.iter_markers()):
            item.add_marker(layer_of(item.path))


# --- end of test layers -------------------------------------------------------------------
