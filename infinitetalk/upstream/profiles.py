"""Memory profiles: how much of the 14B model stays on the GPU, and whether it is quantised.

Upstream has three memory knobs: `--num_persistent_param_in_dit` (DiT
parameters kept in VRAM; 0 streams every layer from host RAM), `--offload_model` (move
models back to host RAM after use) and `--quant int8|fp8` (quantised DiT and T5). A
profile picks all three from the GPU's memory and the host's RAM, and says why.
"""

from collections.abc import Callable

from pydantic import BaseModel, ConfigDict

from infinitetalk.settings import InfiniteTalkSettings, MemoryProfile, Quantization

GIB = 1024**3
FULL_MIN_VRAM_GIB = 70.0
"""80 GB cards (H100, A100-80GB): the bf16 DiT (~30 GB), T5 (~11 GB) and 720p activations fit."""
BALANCED_MIN_VRAM_GIB = 44.0
"""48 GB cards (A6000, L40S, A40): the DiT fits while T5 and CLIP go back to host RAM."""
MIN_VRAM_GIB = 22.0
"""Upstream users report 24 GB cards work only with `--num_persistent_param_in_dit 0`."""
BF16_MIN_HOST_RAM_GIB = 100.0
"""Loading the bf16 weights was killed with 64 GB host RAM and worked with 128 GB (upstream
issue #14); the maintainers point to the quantised model below that."""

_PROFILES: dict[MemoryProfile, tuple[int | None, bool]] = {
    MemoryProfile.FULL: (None, False),
    MemoryProfile.BALANCED: (None, True),
    MemoryProfile.LOWVRAM: (0, True),
}
"""(num_persistent_param_in_dit, offload_model) of each profile; None leaves the flag out."""


class HostInfo(BaseModel):
    """What the GPU probe measured; every field may be unknown."""

    model_config = ConfigDict(frozen=True)

    gpu_name: str | None = None
    vram_bytes: int | None = None
    host_ram_bytes: int | None = None
    torch_version: str | None = None
    cuda_version: str | None = None
    error: str | None = None
    """Why the GPU could not be measured (no torch, no CUDA device, ...)."""

    @property
    def vram_gib(self) -> float | None:
        return self.vram_bytes / GIB if self.vram_bytes is not None else None

    @property
    def host_ram_gib(self) -> float | None:
        return self.host_ram_bytes / GIB if self.host_ram_bytes is not None else None


class ResolvedProfile(BaseModel):
    """The memory settings a run uses, with the reasons and any warnings, for logs and probe."""

    model_config = ConfigDict(frozen=True)

    name: MemoryProfile
    num_persistent_param_in_dit: int | None
    offload_model: bool
    quantization: Quantization
    reasons: tuple[str, ...]
    warnings: tuple[str, ...] = ()

    @property
    def quantized(self) -> bool:
        return self.quantization in (Quantization.INT8, Quantization.FP8)


def needs_measurement(settings: InfiniteTalkSettings) -> bool:
    """Whether `resolve_profile` has anything to decide from measurements."""
    return (
        settings.memory_profile is MemoryProfile.AUTO or settings.quantization is Quantization.AUTO
    )


def resolve_profile(
    settings: InfiniteTalkSettings,
    host: HostInfo | None,
    quant_available: Callable[[Quantization], bool],
) -> ResolvedProfile:
    """Pick the memory profile; explicit settings win, `auto` follows the measurements."""
    reasons: list[str] = []
    warnings: list[str] = []
    host = host or HostInfo(error="not measured")
    vram = host.vram_gib

    name = settings.memory_profile
    if name is not MemoryProfile.AUTO:
        reasons.append(f"INFINITETALK_MEMORY_PROFILE={name.value}")
    elif vram is None:
        name = MemoryProfile.LOWVRAM
        reasons.append(f"GPU not measured ({host.error}): lowvram fits every supported GPU")
    elif vram >= FULL_MIN_VRAM_GIB:
        name = MemoryProfile.FULL
        reasons.append(f"{vram:.0f} GiB VRAM >= {FULL_MIN_VRAM_GIB:g}: whole model stays on GPU")
    elif vram >= BALANCED_MIN_VRAM_GIB:
        name = MemoryProfile.BALANCED
        reasons.append(
            f"{vram:.0f} GiB VRAM >= {BALANCED_MIN_VRAM_GIB:g}: DiT on GPU, "
            "T5/CLIP offloaded after use"
        )
    else:
        name = MemoryProfile.LOWVRAM
        reasons.append(
            f"{vram:.0f} GiB VRAM < {BALANCED_MIN_VRAM_GIB:g}: DiT layers streamed from host RAM"
        )
    if vram is not None and vram < MIN_VRAM_GIB:
        warnings.append(
            f"{vram:.0f} GiB VRAM is below the ~24 GB upstream users report as the minimum"
        )

    quantization = _quantization(settings, host, quant_available, reasons, warnings)
    persistent, offload = _PROFILES[name]
    return ResolvedProfile(
        name=name,
        num_persistent_param_in_dit=persistent,
        offload_model=offload,
        quantization=quantization,
        reasons=tuple(reasons),
        warnings=tuple(warnings),
    )


def _quantization(
    settings: InfiniteTalkSettings,
    host: HostInfo,
    quant_available: Callable[[Quantization], bool],
    reasons: list[str],
    warnings: list[str],
) -> Quantization:
    ram = host.host_ram_gib
    low_ram = ram is not None and ram < BF16_MIN_HOST_RAM_GIB
    if settings.quantization is not Quantization.AUTO:
        reasons.append(f"INFINITETALK_QUANT={settings.quantization.value}")
        if low_ram and settings.quantization is Quantization.NONE:
            warnings.append(_low_ram_warning(ram))
        return settings.quantization
    if not low_ram:
        known = f"{ram:.0f} GiB host RAM" if ram is not None else "host RAM unknown"
        reasons.append(f"{known}: bf16 weights, no quantisation")
        return Quantization.NONE
    if quant_available(Quantization.FP8):
        reasons.append(
            f"{ram:.0f} GiB host RAM < {BF16_MIN_HOST_RAM_GIB:g}: fp8 quantised DiT and T5"
        )
        return Quantization.FP8
    reasons.append("fp8 weights not downloaded: bf16")
    warnings.append(_low_ram_warning(ram))
    return Quantization.NONE


def _low_ram_warning(ram: float | None) -> str:
    return (
        f"{ram:.0f} GiB host RAM < {BF16_MIN_HOST_RAM_GIB:g}: loading the bf16 weights may be "
        "killed (upstream issue #14); run scripts/download_weights.sh --quant fp8 and set "
        "INFINITETALK_QUANT=fp8"
    )
