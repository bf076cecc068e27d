"""The bridge fails loudly: a missing or broken wrangler stops the run with its output."""

import stat
from pathlib import Path

import pytest

from tests.cf_bridge import bridge


def fake_wrangler(tmp_path: Path, script: str) -> Path:
    path = tmp_path / "wrangler"
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def test_a_missing_wrangler_says_to_run_npm_ci(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bridge, "WRANGLER", tmp_path / "no-wrangler")
    with pytest.raises(bridge.BridgeStartError, match="npm ci"):
        bridge.start_bridge()


def test_a_failing_migration_stops_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        bridge, "WRANGLER", fake_wrangler(tmp_path, 'echo "D1_ERROR: boom"; exit 1')
    )
    with pytest.raises(bridge.BridgeStartError, match="D1_ERROR: boom"):
        bridge.start_bridge()


def test_a_dev_server_that_dies_stops_the_start_with_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = 'if [ "$1" = dev ]; then echo "workerd crashed"; exit 3; fi'
    monkeypatch.setattr(bridge, "WRANGLER", fake_wrangler(tmp_path, script))
    with pytest.raises(bridge.BridgeStartError, match="workerd crashed"):
        bridge.start_bridge()
