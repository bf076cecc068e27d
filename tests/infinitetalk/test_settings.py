"""InfiniteTalk settings from the environment: defaults, parsing, every problem named."""

import sys
from pathlib import Path

import pytest

from contracts import Quality
from contracts.settings import SettingsError
from infinitetalk.settings import (
    DEFAULT_MODEL_STORAGE_PATH,
    DEFAULT_UPSTREAM_DIR,
    InfiniteTalkSettings,
    MemoryProfile,
    Mode,
    Quantization,
    Sampling,
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
        "INFINITETALK_FAST_LORA": "lora/fusionx.safetensors",
        "INFINITETALK_FAST_LORA_SCALE": "0.8",
        "INFINITETALK_FAST_SAMPLE_STEPS": "8",
        "INFINITETALK_FAST_TEXT_GUIDE_SCALE": "1.5",
        "INFINITETALK_FAST_AUDIO_GUIDE_SCALE": "2.5",
        "INFINITETALK_FAST_SAMPLE_SHIFT": "3",
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
    assert settings.sampling(Quality.FAST) == Sampling(
        steps=8,
        text_guide_scale=1.5,
        audio_guide_scale=2.5,
        shift=3.0,
        lora=((tmp_path / "models" / "lora" / "fusionx.safetensors", 0.8),),
    )
    assert settings.teacache and settings.teacache_threshold == 0.3
    assert settings.color_correction_strength == 0.5
    assert settings.job_timeout(10.0) == 120 + 30 * 10
    assert (settings.load_timeout_seconds, settings.cancel_grace_seconds) == (900, 5)


def test_standard_is_upstreams_readme_run_and_fast_its_advice_after_a_lora() -> None:
    settings = InfiniteTalkSettings.from_env({"MODEL_STORAGE_PATH": "/m"}, has_gpu=no_gpu)
    assert settings.sampling(Quality.STANDARD) == Sampling(
        steps=40, text_guide_scale=5.0, audio_guide_scale=4.0
    )
    assert settings.sampling(Quality.FAST) == Sampling(
        steps=4,
        text_guide_scale=1.0,
        audio_guide_scale=2.0,
        shift=2.0,
        lora=(
            (Path("/m/lora/Wan21_T2V_14B_lightx2v_cfg_step_distill_lora_rank32.safetensors"), 1.0),
        ),
    )
    absolute = InfiniteTalkSettings.from_env({"INFINITETALK_FAST_LORA": "/loras/x.safetensors"})
    assert absolute.fast_lora_path == Path("/loras/x.safetensors")


def test_a_blank_fast_lora_turns_fast_off() -> None:
    settings = InfiniteTalkSettings.from_env({"INFINITETALK_FAST_LORA": " "}, has_gpu=no_gpu)
    assert settings.fast_lora is None and settings.fast_lora_path is None
    with pytest.raises(ValueError, match="quality=fast needs INFINITETALK_FAST_LORA"):
        settings.sampling(Quality.FAST)
    assert settings.sampling(Quality.STANDARD).steps == 40


MALFORMED = [
    ("INFINITETALK_MODE", "gpu", "must be one of resident, subprocess"),
    ("INFINITETALK_SAMPLE_STEPS", "0", "must be an integer from 1 to 1000"),
    ("INFINITETALK_AUDIO_GUIDE_SCALE", "loud", "must be a number from 0 to 50"),
    ("INFINITETALK_TEXT_GUIDE_SCALE", "nan", "must be a number from 0 to 50"),
    ("INFINITETALK_TEACACHE", "maybe", "must be true or false (1/0, yes/no, on/off)"),
    ("INFINITETALK_MEMORY_PROFILE", "huge", "must be one of auto, full, balanced, lowvram"),
    ("INFINITETALK_QUANT", "fp4", "must be one of auto, none, int8, fp8"),
    ("INFINITETALK_FAST_LORA_SCALE", "0", "must be a number from 0.01 to 10"),
    ("INFINITETALK_FAST_SAMPLE_STEPS", "four", "must be an integer from 1 to 1000"),
    ("INFINITETALK_COLOR_CORRECTION", "1.5", "must be a number from 0 to 1"),
    ("INFINITETALK_TIMEOUT_BASE_SECONDS", "inf", "must be a number from 1 to 86400"),
]


def test_every_problem_is_named_at_once() -> None:
    with pytest.raises(SettingsError) as caught:
        InfiniteTalkSettings.from_env({name: value for name, value, _ in MALFORMED})
    assert caught.value.problems == {name: reason for name, _, reason in MALFORMED}
    assert str(caught.value).startswith("invalid InfiniteTalk settings: INFINITETALK_MODE: ")


def test_a_quantised_model_keeps_its_fast_settings() -> None:
    """Not an error: such an agent serves standard jobs and refuses fast ones."""
    settings = InfiniteTalkSettings.from_env({"INFINITETALK_QUANT": "fp8"}, has_gpu=no_gpu)
    assert settings.quantization is Quantization.FP8 and settings.fast_lora is not None


def test_blank_values_count_as_unset() -> None:
    settings = InfiniteTalkSettings.from_env({"INFINITETALK_SAMPLE_STEPS": "  "}, has_gpu=no_gpu)
    assert settings.sample_steps == 40


def test_upstream_runs_without_the_agents_secrets() -> None:
    kept = {"PATH": "/usr/bin", "CUDA_VISIBLE_DEVICES": "0", "HF_HOME": "/cache"}
    secrets = (
        "AGENT_TOKEN",
        "CF_API_TOKEN",
        "API_KEYS",
        "R2_SECRET_ACCESS_KEY",
        "R2_ACCESS_KEY_ID",
        "DB_PASSWORD",
    )
    env = {**kept, **dict.fromkeys(secrets, "hidden")}
    settings = InfiniteTalkSettings.from_env(env, has_gpu=no_gpu)
    assert settings.child_env == kept
