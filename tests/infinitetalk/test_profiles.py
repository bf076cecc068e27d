"""Memory profiles: what stays on the GPU and whether to quantise, with the reasons."""

from infinitetalk.settings import InfiniteTalkSettings, MemoryProfile, Quantization
from infinitetalk.upstream.profiles import (
    GIB,
    HostInfo,
    needs_measurement,
    resolve_profile,
)


def host(vram_gib: float | None, ram_gib: float | None = 250) -> HostInfo:
    return HostInfo(
        gpu_name="NVIDIA H100 80GB HBM3" if vram_gib else None,
        vram_bytes=int(vram_gib * GIB) if vram_gib is not None else None,
        host_ram_bytes=int(ram_gib * GIB) if ram_gib is not None else None,
        error=None if vram_gib else "torch is not installed",
    )


def no_quant_weights(quantization: Quantization) -> bool:
    return False


def test_an_80gb_card_keeps_the_whole_model_on_the_gpu() -> None:
    profile = resolve_profile(InfiniteTalkSettings(), host(79.2), no_quant_weights)
    assert profile.name is MemoryProfile.FULL
    assert profile.num_persistent_param_in_dit is None and profile.offload_model is False
    assert profile.quantization is Quantization.NONE and not profile.quantized
    assert "79 GiB VRAM" in profile.reasons[0]
    assert "250 GiB host RAM: bf16" in profile.reasons[1]
    assert profile.warnings == ()


def test_a_48gb_card_offloads_after_use() -> None:
    profile = resolve_profile(InfiniteTalkSettings(), host(47.5), no_quant_weights)
    assert profile.name is MemoryProfile.BALANCED
    assert (profile.num_persistent_param_in_dit, profile.offload_model) == (None, True)


def test_a_24gb_card_streams_the_dit_and_small_ones_are_warned_about() -> None:
    profile = resolve_profile(InfiniteTalkSettings(), host(23.6), no_quant_weights)
    assert profile.name is MemoryProfile.LOWVRAM
    assert (profile.num_persistent_param_in_dit, profile.offload_model) == (0, True)
    assert profile.warnings == ()
    small = resolve_profile(InfiniteTalkSettings(), host(15.6), no_quant_weights)
    assert small.name is MemoryProfile.LOWVRAM
    assert "below the ~24 GB" in small.warnings[0]


def test_an_unmeasured_gpu_gets_the_profile_that_fits_every_gpu() -> None:
    profile = resolve_profile(InfiniteTalkSettings(), None, no_quant_weights)
    assert profile.name is MemoryProfile.LOWVRAM
    assert "GPU not measured (not measured)" in profile.reasons[0]
    assert "host RAM unknown" in profile.reasons[1]


def test_explicit_settings_win_over_measurements() -> None:
    settings = InfiniteTalkSettings(
        memory_profile=MemoryProfile.BALANCED, quantization=Quantization.INT8
    )
    profile = resolve_profile(settings, host(79.2), no_quant_weights)
    assert profile.name is MemoryProfile.BALANCED
    assert profile.quantization is Quantization.INT8 and profile.quantized
    assert profile.reasons == (
        "INFINITETALK_MEMORY_PROFILE=balanced",
        "INFINITETALK_QUANT=int8",
    )
    assert not needs_measurement(settings)
    assert needs_measurement(InfiniteTalkSettings(quantization=Quantization.AUTO))


def test_low_host_ram_quantises_when_the_fp8_weights_are_there() -> None:
    profile = resolve_profile(InfiniteTalkSettings(), host(79.2, 62.0), lambda q: True)
    assert profile.quantization is Quantization.FP8
    assert "62 GiB host RAM < 100: fp8" in profile.reasons[1]


def test_low_host_ram_without_fp8_weights_warns_with_the_fix() -> None:
    profile = resolve_profile(InfiniteTalkSettings(), host(79.2, 62.0), no_quant_weights)
    assert profile.quantization is Quantization.NONE
    assert "fp8 weights not downloaded" in profile.reasons[1]
    assert "download_weights.sh --quant fp8" in profile.warnings[0]


def test_the_fast_lora_does_not_keep_low_host_ram_on_bf16() -> None:
    """Standard jobs come first: fast is given up (see `fast_unavailable`), not the RAM."""
    settings = InfiniteTalkSettings()
    assert settings.fast_lora is not None
    profile = resolve_profile(settings, host(79.2, 62.0), lambda q: True)
    assert profile.quantization is Quantization.FP8
    assert not profile.warnings


def test_explicit_bf16_on_low_host_ram_is_warned_about() -> None:
    settings = InfiniteTalkSettings(quantization=Quantization.NONE)
    profile = resolve_profile(settings, host(79.2, 62.0), lambda q: True)
    assert profile.quantization is Quantization.NONE
    assert "issue #14" in profile.warnings[0]
