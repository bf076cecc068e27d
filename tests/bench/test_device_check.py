"""scripts/device_check.sh on this machine: one JSON object, quickly, whatever is missing."""

import json
import os
import stat
import subprocess
import time
from pathlib import Path

import av
from PIL import Image

from infinitetalk.settings import InfiniteTalkSettings
from tests.bench.conftest import HAS_NVIDIA_SMI, ROOT

SCRIPT = ROOT / "scripts" / "device_check.sh"


def device_check(env: dict[str, str], out: Path) -> tuple[int, dict, float]:
    started = time.monotonic()
    done = subprocess.run(
        ["bash", str(SCRIPT)],
        cwd=ROOT,
        env={**env, "OUT": str(out)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    elapsed = time.monotonic() - started
    report = json.loads(done.stdout)
    assert json.loads((out / "device-check.json").read_text()) == report
    return done.returncode, report, elapsed


def test_without_gpu_checkout_or_weights_it_says_exactly_what_is_missing(
    no_gpu_env: dict[str, str], tmp_path: Path
) -> None:
    status, report, elapsed = device_check(no_gpu_env, tmp_path / "out")
    assert status == 1 and elapsed < 60
    if not HAS_NVIDIA_SMI:
        assert report["nvidia_smi"] == {"available": False, "error": "nvidia-smi not found"}
        assert report["host"]["gpu_name"] is None and report["host"]["error"]
    assert report["python"]["project"] is True
    weights = report["weights"]
    assert weights["present"] is False
    assert weights["model_storage_path"] == str(tmp_path / "models")
    settings = InfiniteTalkSettings(model_storage_path=tmp_path / "models")
    missing = "\n".join(weights["missing"])
    assert "has no generate_infinitetalk.py" in missing
    assert f"missing Wan2.1 DiT config: {settings.wan_dir / 'config.json'}" in missing
    assert report["bench_exit"] == 1 and report["bench"]["runs"] == []
    assert report["bench"]["missing"] == weights["missing"]


def test_with_weights_it_runs_the_bench(standin_env: dict[str, str], tmp_path: Path) -> None:
    status, report, _ = device_check(standin_env, tmp_path / "out")
    assert status == 0, report
    (gpu,) = report["nvidia_smi"]["gpus"]
    assert gpu == {
        "index": 0,
        "name": "NVIDIA H200",
        "memory_total_mib": 143771,
        "memory_used_mib": 512,
        "driver_version": "550.54.15",
    }
    assert report["nvidia_smi"]["cuda_version"] == "12.4"
    assert report["weights"]["present"] is True and report["weights"]["missing"] == []
    assert report["bench"]["ok"] is True and len(report["bench"]["runs"]) == 4
    assert (tmp_path / "out" / "bench-gpu.json").is_file()
    # A parallel job's two segments, stitched, and the frames on both sides of its seam.
    seams = report["bench"]["seams"]
    assert (seams["status"], seams["quality"], seams["resolution"]) == ("ok", "fast", "480p")
    assert [(s["start_seconds"], s["end_seconds"]) for s in seams["segments"]] == [
        (0.0, 5.32),
        (5.32, 10.0),
    ]
    (seam,) = seams["seams"]
    assert (seam["frame"], seam["offset_seconds"]) == (133, 0.0)
    with av.open(str(tmp_path / "out" / "seams" / "stitched.mp4")) as video:
        stream = video.streams.video[0]
        size = (stream.width, stream.height)
    for side in ("before", "after"):
        png = tmp_path / "out" / "seams" / f"seam-0-{side}.png"
        assert seam[f"{side}_png"] == str(png)
        with Image.open(png) as image:
            assert image.size == size
    # A dubbing job; no multi weights here, so the two-speaker jobs say why they did not run.
    inputs = report["bench"]["inputs"]
    assert (inputs["status"], inputs["quality"], inputs["resolution"]) == ("ok", "fast", "480p")
    dubbing, *speakers = inputs["jobs"]
    assert (dubbing["kind"], dubbing["status"], dubbing["frames"]) == ("dubbing", "ok", 125)
    assert dubbing["video"] == str(tmp_path / "out" / "inputs" / "dubbing.mp4")
    assert (tmp_path / "out" / "inputs" / "dubbing.mp4").is_file()
    assert [job["status"] for job in speakers] == ["skipped", "skipped"]
    assert "multi weights" in inputs["two_speakers_unavailable"]


def test_nvidia_smi_errors_come_back_as_valid_json(
    no_gpu_env: dict[str, str], tmp_path: Path
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "nvidia-smi"
    fake.write_text(
        "#!/bin/sh\nprintf 'Failed to initialize NVML: \"Driver\"\\\\mismatch\\n\\tsee dmesg\\n'\n"
        "exit 9\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    env = {**no_gpu_env, "PATH": f"{bin_dir}{os.pathsep}{no_gpu_env['PATH']}"}
    _, report, _ = device_check(env, tmp_path / "out")
    assert report["nvidia_smi"] == {
        "available": False,
        "error": 'Failed to initialize NVML: "Driver"\\mismatch\n\tsee dmesg',
    }
