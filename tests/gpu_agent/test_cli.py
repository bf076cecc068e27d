"""`avatar-agent`: settings errors, wiring, engine start failures and signals."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import types
from pathlib import Path
from typing import Any

import pytest

from contracts import Stage
from gpu_agent import cli
from gpu_agent.settings import AgentSettings
from infinitetalk.engine import CancelledError

from .conftest import (
    ACCOUNT,
    AGENT_TOKEN,
    CF_TOKEN,
    EDGE_URL,
    FakeCloud,
    FakeEngine,
    agent_settings,
    pulled,
)

ENV_NAMES = (
    "EDGE_URL",
    "AGENT_TOKEN",
    "CF_API_BASE",
    "CF_ACCOUNT_ID",
    "CF_QUEUE_ID",
    "CF_API_TOKEN",
    "ENGINE",
    "AGENT_ID",
    "VISIBILITY_TIMEOUT_SECONDS",
    "SHUTDOWN_GRACE_SECONDS",
    "WORK_DIR",
    "LOG_LEVEL",
)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def restore_logging() -> object:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def _settings(tmp_path: Path, **extra: str) -> AgentSettings:
    return agent_settings(tmp_path / "work", AGENT_ID="cli-agent", **extra)


def test_bad_env_exits_2_naming_every_problem(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clean_env.setenv("EDGE_URL", "not-a-url")
    clean_env.setenv("AGENT_TOKEN", "tok")
    assert cli.main(["run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("avatar-agent: ")
    for name in ("EDGE_URL", "CF_ACCOUNT_ID", "CF_API_TOKEN"):
        assert name in err
    assert "tok" not in err.replace("avatar-agent", "")


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert "run" in capsys.readouterr().err


def test_main_reads_env_installs_handlers_and_runs(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, restore_logging: object
) -> None:
    for key, value in {
        "EDGE_URL": EDGE_URL,
        "AGENT_TOKEN": AGENT_TOKEN,
        "CF_ACCOUNT_ID": ACCOUNT,
        "CF_API_TOKEN": CF_TOKEN,
        "LOG_LEVEL": "warning",
    }.items():
        clean_env.setenv(key, value)
    seen: dict[str, Any] = {}
    before = signal.getsignal(signal.SIGTERM)

    def fake_run_agent(settings: AgentSettings, stop: threading.Event) -> int:
        seen["engine"] = settings.engine
        seen["handler"] = signal.getsignal(signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)
        seen["stopped"] = stop.is_set()
        return 0

    clean_env.setattr(cli, "run_agent", fake_run_agent)
    assert cli.main(["run", "--engine", "infinitetalk"]) == 0
    assert seen["engine"] == "infinitetalk"
    assert seen["handler"] is not before and seen["stopped"] is True
    assert signal.getsignal(signal.SIGTERM) is before  # restored
    assert logging.getLogger().level == logging.WARNING


def test_second_signal_aborts_with_130(
    clean_env: pytest.MonkeyPatch, restore_logging: object
) -> None:
    for key in ("EDGE_URL", "AGENT_TOKEN", "CF_ACCOUNT_ID", "CF_API_TOKEN"):
        clean_env.setenv(key, EDGE_URL if key == "EDGE_URL" else "x")

    def fake_run_agent(settings: AgentSettings, stop: threading.Event) -> int:
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)
        return 0

    clean_env.setattr(cli, "run_agent", fake_run_agent)
    assert cli.main(["run"]) == 130


def test_run_agent_wires_everything_and_stops_after_the_job(
    tmp_path: Path, fake_media: types.ModuleType
) -> None:
    stop = threading.Event()
    cloud = FakeCloud(messages=[pulled()])
    cloud.on_call = lambda call: stop.set() if call.kind == "complete" else None
    settings = _settings(tmp_path)
    assert cli.run_agent(settings, stop, engine=FakeEngine(), transport=cloud.transport()) == 0
    kinds = [k for k in cloud.kinds() if k != "progress"]
    assert kinds == ["heartbeat", "pull", "claim", "ack", "get", "get", "put", "complete"]
    claim = next(c for c in cloud.calls if c.kind == "claim")
    assert claim.body["agent_id"] == "cli-agent"
    assert claim.headers["user-agent"].startswith("avatar-agent/")
    beat = cloud.calls[0]
    assert beat.body == {"agent_id": "cli-agent", "pod_id": None, "busy": False, "job_id": None}
    assert beat.headers["authorization"] == f"Bearer {AGENT_TOKEN}"
    pull = cloud.calls[1]
    assert pull.headers["authorization"] == f"Bearer {CF_TOKEN}"
    assert "authorization" not in next(c for c in cloud.calls if c.kind == "put").headers
    assert list((tmp_path / "work").iterdir()) == []


def test_shutdown_grace_from_the_environment_reaches_the_agent(
    tmp_path: Path, fake_media: types.ModuleType
) -> None:
    stop = threading.Event()
    cloud = FakeCloud(messages=[pulled()])
    cloud.on_call = lambda call: (
        stop.set() if call.kind == "progress" and call.body["stage"] == "generating" else None
    )
    engine = FakeEngine(
        steps=[(10.0, Stage.GENERATING, None)], wait_for_cancel=5.0, error=CancelledError()
    )
    settings = _settings(tmp_path, SHUTDOWN_GRACE_SECONDS="0")
    assert cli.run_agent(settings, stop, engine=engine, transport=cloud.transport()) == 0
    assert engine.saw_cancel  # no grace: stopped at once, not after the engine's 5 s
    assert cloud.bodies("fail") == [
        {
            "claim_token": "claim-tok",
            "code": "AGENT_SHUTDOWN",
            "message": "agent shutting down",
            "retryable": True,
        }
    ]


def test_run_agent_loads_the_engine_from_the_factory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    factory = types.ModuleType("infinitetalk.factory")
    names: list[str] = []

    def create_engine(name: str) -> FakeEngine:
        names.append(name)
        return FakeEngine()

    vars(factory).update(create_engine=create_engine)
    monkeypatch.setitem(sys.modules, "infinitetalk.factory", factory)
    import infinitetalk

    monkeypatch.setattr(infinitetalk, "factory", factory, raising=False)
    stop = threading.Event()
    stop.set()
    assert cli.run_agent(_settings(tmp_path), stop, transport=FakeCloud().transport()) == 0
    assert names == ["preview"]


def test_engine_that_cannot_start_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(name: str) -> FakeEngine:
        raise ValueError(f"unknown engine {name!r}")

    monkeypatch.setattr(cli, "load_engine", broken)
    assert cli.run_agent(_settings(tmp_path), threading.Event()) == 1
    assert "could not start" in capsys.readouterr().err


def test_probe_names_each_missing_weight_file_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from infinitetalk.settings import InfiniteTalkSettings, Quantization
    from infinitetalk.upstream import gpu_probe
    from infinitetalk.upstream.profiles import HostInfo
    from infinitetalk.upstream.weights import required_weights

    monkeypatch.setattr(gpu_probe, "measure_host", lambda: HostInfo(error="no torch"))
    monkeypatch.setenv("MODEL_STORAGE_PATH", str(tmp_path / "models"))
    monkeypatch.setenv("INFINITETALK_DIR", str(tmp_path / "checkout"))
    monkeypatch.setenv("INFINITETALK_QUANT", "none")
    assert cli.main(["probe"]) == 1
    text = capsys.readouterr().out
    files = required_weights(
        InfiniteTalkSettings(model_storage_path=tmp_path / "models"), Quantization.NONE
    )
    assert files and all(text.count(f"{file.path}\n") == 1 for file in files)
    assert f"  - {len(files)} weight files marked MISSING above: fetch them with" in text
    assert "has no generate_infinitetalk.py" in text
