"""The weight layout and the start-up check that refuses an agent that could not run a job."""

import os
from pathlib import Path

from infinitetalk.settings import InfiniteTalkSettings, MemoryProfile, Mode, Quantization
from infinitetalk.upstream.preflight import (
    EngineStartError,
    fast_unavailable,
    startup_problems,
    two_speakers_unavailable,
)
from infinitetalk.upstream.profiles import ResolvedProfile
from infinitetalk.upstream.weights import check_weights, quant_available, required_weights
from tests.fixtures.standin import STANDIN_DIR, make_weights


def profile(quantization: Quantization = Quantization.NONE) -> ResolvedProfile:
    return ResolvedProfile(
        name=MemoryProfile.FULL,
        num_persistent_param_in_dit=None,
        offload_model=False,
        quantization=quantization,
        reasons=(),
    )


def names(settings: InfiniteTalkSettings, quantization: Quantization) -> set[str]:
    root = settings.model_storage_path
    return {str(w.path.relative_to(root)) for w in required_weights(settings, quantization)}


def test_bf16_needs_the_shards_t5_and_infinitetalk_weights(tmp_path: Path) -> None:
    files = names(InfiniteTalkSettings(model_storage_path=tmp_path), Quantization.NONE)
    assert "Wan2.1-I2V-14B-480P/diffusion_pytorch_model-00007-of-00007.safetensors" in files
    assert "Wan2.1-I2V-14B-480P/models_t5_umt5-xxl-enc-bf16.pth" in files
    assert "InfiniteTalk/single/infinitetalk.safetensors" in files
    assert "chinese-wav2vec2-base/model.safetensors" in files
    assert "Wan2.1-I2V-14B-480P/google/umt5-xxl" in files
    assert not any("quant_models" in name for name in files)
    assert len(files) == 17  # 8 shared, 7 DiT shards, T5, InfiniteTalk


def test_quantised_runs_need_the_quantised_dit_and_t5_instead(tmp_path: Path) -> None:
    files = names(InfiniteTalkSettings(model_storage_path=tmp_path), Quantization.FP8)
    assert {
        "InfiniteTalk/quant_models/infinitetalk_single_fp8.safetensors",
        "InfiniteTalk/quant_models/infinitetalk_single_fp8.json",
        "InfiniteTalk/quant_models/t5_fp8.safetensors",
        "InfiniteTalk/quant_models/t5_map_fp8.json",
    } <= files
    assert not any("diffusion_pytorch_model" in name or "bf16" in name for name in files)


def test_the_fast_lora_is_optional(tmp_path: Path) -> None:
    settings = InfiniteTalkSettings(model_storage_path=tmp_path)
    assert not any(name.startswith("lora/") for name in names(settings, Quantization.NONE))


def test_fast_needs_its_lora_and_an_unquantised_model(tmp_path: Path) -> None:
    settings = InfiniteTalkSettings(model_storage_path=tmp_path)
    assert fast_unavailable(settings, Quantization.NONE) == (
        "this agent has no distilled LoRA (INFINITETALK_FAST_LORA="
        "lora/Wan21_T2V_14B_lightx2v_cfg_step_distill_lora_rank32.safetensors is missing)"
    )
    make_weights(tmp_path)
    assert fast_unavailable(settings, Quantization.NONE) is None
    assert fast_unavailable(settings, Quantization.FP8) == (
        "this agent runs the fp8 quantised model, on which upstream ignores LoRA "
        "(INFINITETALK_QUANT=auto)"
    )
    blank = settings.model_copy(update={"fast_lora": None})
    assert fast_unavailable(blank, Quantization.NONE) == (
        "this agent has no distilled LoRA (INFINITETALK_FAST_LORA is blank)"
    )


def test_two_speakers_need_the_multi_weights_and_an_unquantised_model(tmp_path: Path) -> None:
    settings = InfiniteTalkSettings(model_storage_path=tmp_path)
    missing = two_speakers_unavailable(settings, Quantization.NONE)
    assert missing is not None and "multi/infinitetalk.safetensors) are missing" in missing
    settings.multi_weights.parent.mkdir(parents=True)
    settings.multi_weights.write_bytes(b"{}")
    assert two_speakers_unavailable(settings, Quantization.NONE) is None
    quantised = two_speakers_unavailable(settings, Quantization.INT8)
    assert quantised is not None and "int8 quantised model" in quantised


def test_check_weights_measures_files_and_tokenizer_folders(tmp_path: Path) -> None:
    settings = InfiniteTalkSettings(model_storage_path=tmp_path)
    assert not quant_available(settings, Quantization.INT8)
    make_weights(tmp_path, Quantization.INT8)
    statuses = check_weights(required_weights(settings, Quantization.INT8))
    assert all(status.present for status in statuses)
    folder = next(s for s in statuses if s.file.directory)
    assert folder.size_bytes == 2  # tokenizer.json holds "{}"
    assert quant_available(settings, Quantization.INT8)
    assert not quant_available(settings, Quantization.FP8)
    (tmp_path / "Wan2.1-I2V-14B-480P" / "xlm-roberta-large" / "tokenizer.json").unlink()
    assert not all(s.present for s in check_weights(required_weights(settings, Quantization.INT8)))


def test_a_complete_setup_has_no_problems(standin_models: Path) -> None:
    settings = InfiniteTalkSettings(
        mode=Mode.RESIDENT, upstream_dir=STANDIN_DIR, model_storage_path=standin_models
    )
    assert startup_problems(settings, profile()) == []


def test_every_missing_piece_is_named(tmp_path: Path) -> None:
    python = tmp_path / "python"
    python.write_text("not executable")
    settings = InfiniteTalkSettings(
        mode=Mode.SUBPROCESS,
        upstream_dir=tmp_path / "nowhere",
        python=python,
        model_storage_path=tmp_path / "models",
    )
    problems = startup_problems(settings, profile())
    assert "has no generate_infinitetalk.py: clone https://github.com/MeiGen-AI" in problems[0]
    assert f"INFINITETALK_PYTHON={python} is not an executable file" in problems[1]
    assert any("missing InfiniteTalk audio weights:" in p for p in problems)
    assert "scripts/download_weights.sh" in problems[-1]
    message = str(EngineStartError(problems))
    assert message.startswith("InfiniteTalk cannot start:\n  - INFINITETALK_DIR=")


def test_resident_mode_needs_the_wan_package(tmp_path: Path, standin_models: Path) -> None:
    (tmp_path / "generate_infinitetalk.py").touch()
    settings = InfiniteTalkSettings(
        mode=Mode.RESIDENT, upstream_dir=tmp_path, model_storage_path=standin_models
    )
    assert startup_problems(settings, profile()) == [
        f"INFINITETALK_DIR={tmp_path} has no wan package (resident mode needs it)"
    ]
    subprocess_mode = settings.model_copy(update={"mode": Mode.SUBPROCESS})
    assert os.access(subprocess_mode.python, os.X_OK)
    assert startup_problems(subprocess_mode, profile()) == []
