"""How `avatar-agent` hands InfiniteTalk its settings, and `avatar-agent probe`."""

import json
import threading
from pathlib import Path

import pytest

from gpu_agent import cli
from gpu_agent.settings import AgentSettings
from infinitetalk.settings import InfiniteTalkSettings
from infinitetalk.upstream import gpu_probe
from infinitetalk.upstream.profiles import HostInfo
from tests.fixtures.standin import agent_env

BASE_ENV = {
    "EDGE_URL": "http://edge.test",
    "AGENT_TOKEN": "agent-secret-token",
    "CF_ACCOUNT_ID": "acct",
    "CF_API_TOKEN": "cf-secret-token",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(__import__("os").environ):
        if name.startswith(("INFINITETALK_", "ENGINE", "MODEL_STORAGE_PATH")):
            monkeypatch.delenv(name)
    for name, value in BASE_ENV.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_run_reads_infinitetalk_settings_only_for_that_engine(env: pytest.MonkeyPatch) -> None:
    seen: list[AgentSettings] = []
    env.setattr(cli, "run_agent", lambda settings, stop: seen.append(settings) or 0)
    env.setattr(cli, "configure_logging", lambda *args, **kwargs: None)
    env.setenv("INFINITETALK_SAMPLE_STEPS", "8")
    assert cli.main(["run", "--engine", "infinitetalk"]) == 0
    assert seen[-1].infinitetalk is not None and seen[-1].infinitetalk.sample_steps == 8
    env.setenv("INFINITETALK_SAMPLE_STEPS", "many")
    assert cli.main(["run", "--engine", "preview"]) == 0  # not read for preview
    assert seen[-1].infinitetalk is None


def test_a_bad_infinitetalk_setting_stops_the_agent_naming_it(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env.setenv("ENGINE", "infinitetalk")
    env.setenv("INFINITETALK_QUANT", "int4")
    assert cli.main(["run"]) == 2
    assert "INFINITETALK_QUANT: must be one of auto, none, int8, fp8" in capsys.readouterr().err


class ClosingEngine:
    name = "infinitetalk"

    def __init__(self) -> None:
        self.closed = False

    def generate(self, *args: object) -> None:
        raise AssertionError("no job expected")

    def close(self) -> None:
        self.closed = True


def test_the_engine_gets_its_settings_and_is_closed_at_shutdown(
    env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    received: list[tuple[str, dict[str, object]]] = []
    engine = ClosingEngine()

    def create_engine(name: str, **options: object) -> ClosingEngine:
        received.append((name, options))
        return engine

    env.setattr("infinitetalk.factory.create_engine", create_engine)
    engine_settings = InfiniteTalkSettings(sample_steps=8)
    settings = AgentSettings.from_env({**BASE_ENV, "WORK_DIR": str(tmp_path)}).model_copy(
        update={"engine": "infinitetalk", "infinitetalk": engine_settings}
    )
    stop = threading.Event()
    stop.set()
    assert cli.run_agent(settings, stop) == 0
    assert received == [("infinitetalk", {"infinitetalk": engine_settings})]
    assert engine.closed


def test_probe_prints_the_report(
    env: pytest.MonkeyPatch, standin_models: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env.setattr(gpu_probe, "measure_host", lambda: HostInfo(error="torch is not installed"))
    for name, value in agent_env(standin_models, "subprocess").items():
        env.setenv(name, value)
    assert cli.main(["probe", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["host"]["error"] == "torch is not installed"
    assert report["profile"]["name"] == "lowvram"
    env.setenv("MODEL_STORAGE_PATH", "/nowhere")
    assert cli.main(["probe"]) == 1
    assert "MISSING" in capsys.readouterr().out
