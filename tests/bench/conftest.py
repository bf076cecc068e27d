"""Shared by the bench tests: environments to run the bench in, and a fake `nvidia-smi`."""

import os
import shutil
import stat
import sys
from pathlib import Path

import pytest

from tests.fixtures.standin import agent_env, make_weights

ROOT = Path(__file__).resolve().parents[2]
FAKE_NVIDIA_SMI = """#!/bin/sh
case "$*" in
  *index,memory.total*) echo "0, 143771, 512, 550.54.15, NVIDIA H200" ;;
  *name,memory.total*) echo "NVIDIA H200, 143771" ;;
  *memory.used*) echo "2048" ;;
  *) echo "| NVIDIA-SMI 550.54.15    Driver Version: 550.54.15    CUDA Version: 12.4 |" ;;
esac
"""


HAS_NVIDIA_SMI = shutil.which("nvidia-smi") is not None
"""A machine with a GPU: the no-GPU tests leave out what they would see of it."""


@pytest.fixture
def no_gpu_env(tmp_path: Path) -> dict[str, str]:
    """No upstream checkout, an empty weights folder; explicit profile and quantisation, so
    the files expected do not depend on this machine's RAM."""
    return {
        **os.environ,
        "PYTHON": sys.executable,
        "INFINITETALK_DIR": str(tmp_path / "no-checkout"),
        "MODEL_STORAGE_PATH": str(tmp_path / "models"),
        "INFINITETALK_MEMORY_PROFILE": "lowvram",
        "INFINITETALK_QUANT": "none",
        "LOG_LEVEL": "WARNING",
    }


@pytest.fixture
def standin_env(tmp_path: Path) -> dict[str, str]:
    """The stand-in upstream with every weight file, and an nvidia-smi that reports an H200."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "nvidia-smi"
    fake.write_text(FAKE_NVIDIA_SMI)
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    models = make_weights(tmp_path / "models")
    return {
        **os.environ,
        **agent_env(models, "subprocess", STANDIN_STEP_SECONDS="0.01"),
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "PYTHON": sys.executable,
        "LOG_LEVEL": "WARNING",
    }
