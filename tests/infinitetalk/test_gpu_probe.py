"""`avatar-agent probe` and the measurements behind the memory profile."""

import io
import json
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

from infinitetalk.settings import InfiniteTalkSettings, MemoryProfile, Mode
from infinitetalk.upstream import gpu_probe, pinned
from infinitetalk.upstream.gpu_probe import (
    build_report,
    format_report,
    host_ram_bytes,
    measure_host,
    measure_in_subprocess,
    probe_main,
)
from infinitetalk.upstream.profiles import GIB, HostInfo
from tests.fixtures.standin import STANDIN_DIR, agent_env


def fake_torch(available: bool = True, error: Exception | None = None) -> ModuleType:
    torch = ModuleType("torch")
    torch.__version__ = "2.4.1+cu121"  # type: ignore[attr-defined]
    torch.version = SimpleNamespace(cuda="12.1")  # type: ignore[attr-defined]

    def properties(index: int) -> SimpleNamespace:
        if error is not None:
            raise error
        return SimpleNamespace(name="NVIDIA H100 80GB HBM3", total_memory=int(79.2 * GIB))

    torch.cuda = SimpleNamespace(  # type: ignore[attr-defined]
        is_available=lambda: available, get_device_properties=properties
    )
    return torch


def test_measure_host_reads_the_gpu_through_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", fake_torch())
    host = measure_host()
    assert host.gpu_name == "NVIDIA H100 80GB HBM3"
    assert host.vram_gib == pytest.approx(79.2)
    assert (host.torch_version, host.cuda_version, host.error) == ("2.4.1+cu121", "12.1", None)
    assert host.host_ram_bytes and host.host_ram_bytes > 0


@pytest.mark.parametrize(
    ("torch", "error"),
    [
        (None, "torch is not installed"),
        (fake_torch(available=False), "torch sees no CUDA device"),
        (fake_torch(error=RuntimeError("driver too old")), "CUDA query failed: driver too old"),
    ],
)
def test_measure_host_names_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, torch: ModuleType | None, error: str
) -> None:
    monkeypatch.setitem(sys.modules, "torch", torch)  # None makes the import fail
    host = measure_host()
    assert host.vram_bytes is None and error in (host.error or "")


def test_host_ram_is_capped_by_the_containers_limit(tmp_path: Path) -> None:
    physical = host_ram_bytes(())
    assert physical and physical > 0
    (tmp_path / "max").write_text("max\n")  # cgroup v2 without a limit
    (tmp_path / "limit").write_text("1073741824\n")
    assert host_ram_bytes((tmp_path / "max", tmp_path / "missing")) == physical
    assert host_ram_bytes((tmp_path / "limit",)) == 1024**3


def test_measuring_in_a_child_keeps_cuda_out_of_the_agent() -> None:
    host = measure_in_subprocess()  # this venv has no torch, like the tests' machine
    assert host.error is not None and "torch is not installed" in host.error
    assert host.host_ram_bytes


def test_a_failing_measurement_is_reported_not_raised(tmp_path: Path) -> None:
    host = measure_in_subprocess(str(tmp_path / "no-python"))
    assert host.error is not None and host.error.startswith("GPU probe failed")


def ready_settings(models: Path) -> InfiniteTalkSettings:
    return InfiniteTalkSettings(
        mode=Mode.RESIDENT, upstream_dir=STANDIN_DIR, model_storage_path=models
    )


def test_report_of_a_ready_machine(standin_models: Path) -> None:
    host = HostInfo(
        gpu_name="NVIDIA H100 80GB HBM3",
        vram_bytes=int(79.2 * GIB),
        host_ram_bytes=200 * GIB,
        torch_version="2.4.1+cu121",
        cuda_version="12.1",
    )
    report = build_report(ready_settings(standin_models), host)
    assert report.problems == [] and report.profile.name is MemoryProfile.FULL
    assert report.upstream_commit_pinned == pinned.UPSTREAM_COMMIT
    assert all(w.size_bytes is not None for w in report.weights)
    text = format_report(report)
    assert "GPU:            NVIDIA H100 80GB HBM3, 79.2 GiB VRAM" in text
    assert "host RAM:       200.0 GiB" in text
    assert "--num_persistent_param_in_dit (not set: whole DiT on GPU)" in text
    assert "--offload_model False" in text
    assert "why: 79 GiB VRAM >= 70" in text
    assert "checkout:     unknown (no .git)" in text
    assert "quality=fast:   available\n  ok" in text
    assert f"fast LoRA (quality=fast): {standin_models}/lora/Wan21_T2V_14B_lightx2v" in text
    assert "two speakers:   unavailable, the multi weights" in text  # optional: still ready
    assert text.endswith("ready: the agent can start with ENGINE=infinitetalk")


def test_report_of_a_machine_that_cannot_start(tmp_path: Path) -> None:
    checkout = tmp_path / "InfiniteTalk"
    (checkout / ".git").mkdir(parents=True)
    (checkout / ".git" / "HEAD").write_text("0" * 40)
    (tmp_path / "models" / "InfiniteTalk" / "single").mkdir(parents=True)
    (tmp_path / "models" / "InfiniteTalk" / "single" / "infinitetalk.safetensors").write_bytes(
        b"x" * 2048
    )
    settings = InfiniteTalkSettings(upstream_dir=checkout, model_storage_path=tmp_path / "models")
    text = format_report(
        build_report(settings, HostInfo(host_ram_bytes=64 * GIB, error="no torch"))
    )
    assert "GPU:            not measured (no torch)" in text
    assert "differs from the pinned commit" in text
    assert "--num_persistent_param_in_dit 0" in text
    assert "warning: 64 GiB host RAM < 100" in text
    assert "MISSING         -  Wan2.1 VAE" in text
    assert "ok        2.0 KiB  InfiniteTalk audio weights" in text
    assert "cannot start:" in text and "has no generate_infinitetalk.py" in text
    assert "quality=fast:   unavailable, this agent has no distilled LoRA (INFINITETALK_" in text
    assert "MISSING         -  fast LoRA (quality=fast)" in text
    assert "two speakers:   unavailable, the multi weights (" in text
    assert "MISSING         -  InfiniteTalk multi weights (two speakers)" in text
    assert not any("multi" in p for p in text.split("cannot start:")[1].splitlines())
    assert not any("fast LoRA" in p for p in text.split("cannot start:")[1].splitlines())


def test_probe_main_prints_json_and_exits_by_readiness(
    standin_models: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(gpu_probe, "measure_host", lambda: HostInfo(error="no torch"))
    out = io.StringIO()
    env = agent_env(standin_models, "resident")
    assert probe_main(env, as_json=True, out=out) == 0
    report = json.loads(out.getvalue())
    assert report["mode"] == "resident" and report["problems"] == []
    assert report["profile"]["num_persistent_param_in_dit"] == 0
    assert report["fast_unavailable"] is None and report["fast_lora"]["size_bytes"] == 2
    assert report["multi_weights"]["size_bytes"] is None
    assert "scripts/download_weights.sh" in report["two_speakers_unavailable"]
    out = io.StringIO()
    assert probe_main({**env, "INFINITETALK_QUANT": "fp8"}, as_json=True, out=out) == 0
    assert "fp8 quantised model" in json.loads(out.getvalue())["fast_unavailable"]
    out = io.StringIO()
    assert probe_main({**env, "INFINITETALK_FAST_LORA": ""}, as_json=True, out=out) == 0
    blank = json.loads(out.getvalue())
    assert blank["fast_lora"] is None and "is blank" in blank["fast_unavailable"]
    missing = {**env, "MODEL_STORAGE_PATH": str(tmp_path)}
    assert probe_main(missing, as_json=False, out=io.StringIO()) == 1
    out = io.StringIO()
    assert probe_main({"INFINITETALK_MODE": "gpu"}, as_json=False, out=out) == 2
    assert "INFINITETALK_MODE: must be one of" in out.getvalue()
