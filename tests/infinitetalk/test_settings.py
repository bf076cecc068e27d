"""InfiniteTalk settings from the environment: defaults, parsing, every problem named."""

import sys
from pathlib import Path

import pytest

from infinitetalk.settings import (
    DEFAULT_MODEL_STORAGE_PATH,
    DEFAULT_UPSTREAM_DIR,
    EngineSettingsError,
    InfiniteTalkSettings,
    MemoryProfile,
    Mode,
    Quantization,
    gpu_visible,
)


def no_gpu() -> bool:
    return False


def test_defaults_follow_upstreams_readme_run() -> None:
    settings = InfiniteTalkSettings.from_env({}, has_gpu=no_gpu)
    assert settings.mode is Mode.SUBPROCESS
    assert settings.upstream_dir == DEFAULT_UPSTREAM_DIR
    assert settings.model_storage_path == DEFAULT_MODEL_STORAGE_PATH
    assert settings.python == Path(sys.executable)
    assert (settings.sample_steps, settings.text_guide_scale, settings.audio_guide_scale) == (
        40,
        5.0,
        4.0,
    )
    assert settings.sample_shift is None  # upstream picks 7 (480p) or 11 (720p)
    assert settings.memory_profile is MemoryProfile.AUTO
    assert settings.quantization is Quantization.AUTO
    assert settings.wan_dir == DEFAULT_MODEL_STORAGE_PATH / "Wan2.1-I2V-14B-480P"
    assert settings.infinitetalk_weights.parts[-3:] == (
        "InfiniteTalk",
        "single",
        "infinitetalk.safetensors",
    )


def test_resident_is_the_default_where_a_gpu_is_visible() -> None:
    assert InfiniteTalkSettings.from_env({}, has_gpu=lambda: True).mode is Mode.RESIDENT
    explicit = {"INFINITETALK_MODE": "Subprocess"}
    assert InfiniteTalkSettings.from_env(explicit, has_gpu=lambda: True).mode is Mode.SUBPROCESS


def test_gpu_visible_looks_for_device_nodes(tmp_path: Path) -> None:
    assert not gpu_visible(str(tmp_path / "nvidia[0-9]*"))
    (tmp_path / "nvidia0").touch()
    assert gpu_visible(str(tmp_path / "nvidia[0-9]*"))


def test_every_variable_is_read(tmp_path: Path) -> None:
    env = {
        "INFINITETALK_MODE": "resident",
        "INFINITETALK_DIR": str(tmp_path / "it"),
        "INFINITETALK_PYTHON": "/opt/conda/bin/python",
        "MODEL_STORAGE_PATH": str(tmp_path / "models"),
        "INFINITETALK_SAMPLE_STEPS": "8",
        "INFINITETALK_SAMPLE_SHIFT": "2",
        "INFINITETALK_TEXT_GUIDE_SCALE": "1",
        "INFINITETALK_AUDIO_GUIDE_SCALE": "2",
        "INFINITETALK_MEMORY_PROFILE": "LOWVRAM",
        "INFINITETALK_QUANT": "none",
        "INFINITETALK_LORA": "lora/fusionx.safetensors, /abs/other.safetensors",
        "INFINITETALK_LORA_SCALE": "1.0,0.5",
        "INFINITETALK_TEACACHE": "yes",
        "INFINITETALK_TEACACHE_THRESH": "0.3",
        "INFINITETALK_COLOR_CORRECTION": "0.5",
        "INFINITETALK_TIMEOUT_BASE_SECONDS": "120",
        "INFINITETALK_TIMEOUT_PER_AUDIO_SECOND": "30",
        "INFINITETALK_LOAD_TIMEOUT_SECONDS": "900",
        "INFINITETALK_CANCEL_GRACE_SECONDS": "5",
    }
    settings = InfiniteTalkSettings.from_env(env)
    assert settings.mode is Mode.RESIDENT
    assert settings.upstream_dir == tmp_path / "it"
    assert settings.python == Path("/opt/conda/bin/python")
    assert settings.sample_steps == 8 and settings.sample_shift == 2.0
    assert (settings.text_guide_scale, settings.audio_guide_scale) == (1.0, 2.0)
    assert settings.memory_profile is MemoryProfile.LOWVRAM
    assert settings.quantization is Quantization.NONE
    assert settings.lora_paths() == (
        tmp_path / "models" / "lora" / "fusionx.safetensors",
        Path("/abs/other.safetensors"),
    )
    assert settings.lora_scales == (1.0, 0.5)
    assert settings.teacache and settings.teacache_threshold == 0.3
    assert settings.color_correction_strength == 0.5
    assert settings.job_timeout(10.0) == 120 + 30 * 10
    assert (settings.load_timeout_seconds, settings.cancel_grace_seconds) == (900, 5)


def test_lora_scale_defaults_to_upstreams_per_file() -> None:
    settings = InfiniteTalkSettings.from_env({"INFINITETALK_LORA": "a.safetensors"})
    assert settings.lora_scales == (1.2,)


def test_every_problem_is_named_at_once() -> None:
    env = {
        "INFINITETALK_MODE": "gpu",
        "INFINITETALK_SAMPLE_STEPS": "0",
        "INFINITETALK_AUDIO_GUIDE_SCALE": "loud",
        "INFINITETALK_TEXT_GUIDE_SCALE": "nan",
        "INFINITETALK_TEACACHE": "maybe",
        "INFINITETALK_MEMORY_PROFILE": "huge",
        "INFINITETALK_LORA": "a.safetensors,b.safetensors",
        "INFINITETALK_LORA_SCALE": "1.0",
    }
    with pytest.raises(EngineSettingsError) as caught:
        InfiniteTalkSettings.from_env(env)
    assert set(caught.value.problems) == {
        "INFINITETALK_MODE",
        "INFINITETALK_SAMPLE_STEPS",
        "INFINITETALK_AUDIO_GUIDE_SCALE",
        "INFINITETALK_TEXT_GUIDE_SCALE",
        "INFINITETALK_TEACACHE",
        "INFINITETALK_MEMORY_PROFILE",
        "INFINITETALK_LORA_SCALE",
    }
    assert "one of resident, subprocess" in str(caught.value)
    assert "an integer from 1 to 1000" in caught.value.problems["INFINITETALK_SAMPLE_STEPS"]


def test_lora_on_a_quantised_model_is_refused() -> None:
    env = {"INFINITETALK_LORA": "a.safetensors", "INFINITETALK_QUANT": "fp8"}
    with pytest.raises(EngineSettingsError, match="ignores LoRA on a quantised model"):
        InfiniteTalkSettings.from_env(env)


def test_blank_values_count_as_unset() -> None:
    settings = InfiniteTalkSettings.from_env({"INFINITETALK_SAMPLE_STEPS": "  "}, has_gpu=no_gpu)
    assert settings.sample_steps == 40


def test_upstream_runs_without_the_agents_secrets() -> None:
    env = {
        "PATH": "/usr/bin",
        "CUDA_VISIBLE_DEVICES": "0",
        "HF_HOME": "/cache",
        "AGENT_TOKEN": "a",
        "CF_API_TOKEN": "b",
        "API_KEYS": "c",
        "R2_SECRET_ACCESS_KEY": "d",
        "R2_ACCESS_KEY_ID": "e",
        "DB_PASSWORD": "f",
    }
    settings = InfiniteTalkSettings.from_env(env, has_gpu=no_gpu)
    assert settings.child_env == {
        "PATH": "/usr/bin",
        "CUDA_VISIBLE_DEVICES": "0",
        "HF_HOME": "/cache",
    }
