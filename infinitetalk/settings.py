"""InfiniteTalk engine configuration (the variables: README.md, Configuration), validated
once at start-up.

Only the agent's CLI reads the environment; it hands the mapping to `from_env` and the
engine receives the resulting `InfiniteTalkSettings`. Paths are not checked here (that
is `preflight`'s job, with the upstream checkout and the weights in view).
"""

from __future__ import annotations

import glob
import re
import sys
from collections.abc import Callable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_settings import SettingsConfigDict

from contracts import Quality
from contracts.settings import CODE_ONLY, CaseInsensitive, EnvSettings

DEFAULT_UPSTREAM_DIR = Path("/opt/InfiniteTalk")
DEFAULT_MODEL_STORAGE_PATH = Path("/runpod-volume/models")
DEFAULT_FAST_LORA = Path("lora/Wan21_T2V_14B_lightx2v_cfg_step_distill_lora_rank32.safetensors")
"""lightx2v's step-distilled LoRA (Kijai/WanVideo_comfy), the 4-step one upstream's README names."""
_SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|API_KEY|ACCESS_KEY|CREDENTIAL", re.IGNORECASE)
ExpandedPath = Annotated[Path, AfterValidator(Path.expanduser)]


class Mode(StrEnum):
    RESIDENT = "resident"
    """The model lives in a worker process owned by the agent and serves every job."""
    SUBPROCESS = "subprocess"
    """Each job runs upstream's `generate_infinitetalk.py` (and pays the model load)."""


class MemoryProfile(StrEnum):
    AUTO = "auto"
    FULL = "full"
    BALANCED = "balanced"
    LOWVRAM = "lowvram"


class Quantization(StrEnum):
    AUTO = "auto"
    NONE = "none"
    INT8 = "int8"
    FP8 = "fp8"


class Sampling(BaseModel):
    """How one job samples: the one place where a quality becomes upstream's parameters."""

    model_config = ConfigDict(frozen=True)

    steps: int
    text_guide_scale: float
    audio_guide_scale: float
    shift: float | None = None
    """Upstream's `--sample_shift`; None leaves upstream's default for the resolution."""
    lora: tuple[tuple[Path, float], ...] = ()
    """LoRA files merged into the DiT for this job, with their scales."""


def gpu_visible(device_glob: str = "/dev/nvidia[0-9]*") -> bool:
    """Whether an NVIDIA GPU is mapped into this container, without loading CUDA."""
    return bool(glob.glob(device_glob))


class InfiniteTalkSettings(EnvSettings):
    """Everything the InfiniteTalk engine needs; defaults follow upstream's README run."""

    model_config = SettingsConfigDict(env_prefix="INFINITETALK_")
    label = "InfiniteTalk"

    mode: Annotated[Mode, CaseInsensitive] = Mode.SUBPROCESS
    """`from_env` makes resident the default where a GPU is visible."""
    upstream_dir: ExpandedPath = Field(
        default=DEFAULT_UPSTREAM_DIR, validation_alias="INFINITETALK_DIR"
    )
    python: ExpandedPath = Field(default_factory=lambda: Path(sys.executable))
    model_storage_path: ExpandedPath = Field(
        default=DEFAULT_MODEL_STORAGE_PATH, validation_alias="MODEL_STORAGE_PATH"
    )
    sample_steps: int = Field(default=40, ge=1, le=1000)
    sample_shift: float | None = Field(default=None, ge=0.01, le=100)
    text_guide_scale: float = Field(default=5.0, ge=0, le=50)
    audio_guide_scale: float = Field(default=4.0, ge=0, le=50)
    memory_profile: Annotated[MemoryProfile, CaseInsensitive] = MemoryProfile.AUTO
    quantization: Annotated[Quantization, CaseInsensitive] = Field(
        default=Quantization.AUTO, validation_alias="INFINITETALK_QUANT"
    )
    fast_lora: ExpandedPath | None = DEFAULT_FAST_LORA
    """The distilled LoRA of `quality=fast`, relative to MODEL_STORAGE_PATH; None (the
    variable set but blank): no fast."""
    fast_lora_scale: float = Field(default=1.0, ge=0.01, le=10)
    fast_sample_steps: int = Field(default=4, ge=1, le=1000)
    fast_text_guide_scale: float = Field(default=1.0, ge=0, le=50)
    fast_audio_guide_scale: float = Field(default=2.0, ge=0, le=50)
    fast_sample_shift: float = Field(default=2.0, ge=0.01, le=100)
    teacache: bool = False
    teacache_threshold: float = Field(
        default=0.2, ge=0.01, le=10, validation_alias="INFINITETALK_TEACACHE_THRESH"
    )
    color_correction_strength: float = Field(
        default=1.0, ge=0, le=1, validation_alias="INFINITETALK_COLOR_CORRECTION"
    )
    timeout_base_seconds: float = Field(default=600.0, ge=1, le=86400)
    timeout_per_audio_second: float = Field(default=90.0, ge=0.1, le=3600)
    load_timeout_seconds: float = Field(default=1800.0, ge=1, le=86400)
    cancel_grace_seconds: float = Field(default=10.0, ge=0.1, le=600)
    child_env: Annotated[dict[str, str], CODE_ONLY] = Field(default_factory=dict)
    """The environment upstream runs in: the agent's, less anything that looks secret."""

    @property
    def wan_dir(self) -> Path:
        return self.model_storage_path / "Wan2.1-I2V-14B-480P"

    @property
    def infinitetalk_weights(self) -> Path:
        return self.model_storage_path / "InfiniteTalk" / "single" / "infinitetalk.safetensors"

    @property
    def multi_weights(self) -> Path:
        """Upstream's two-person audio weights: an agent with them serves two speakers."""
        return self.model_storage_path / "InfiniteTalk" / "multi" / "infinitetalk.safetensors"

    @property
    def wav2vec_dir(self) -> Path:
        return self.model_storage_path / "chinese-wav2vec2-base"

    def quant_weights(self, quantization: Quantization) -> Path:
        """The quantised DiT upstream's `--quant_dir` names (T5 files sit beside it)."""
        name = f"infinitetalk_single_{quantization.value}.safetensors"
        return self.model_storage_path / "InfiniteTalk" / "quant_models" / name

    @property
    def fast_lora_path(self) -> Path | None:
        """The fast LoRA file, a relative setting taken under MODEL_STORAGE_PATH."""
        if self.fast_lora is None:
            return None
        return (
            self.fast_lora
            if self.fast_lora.is_absolute()
            else self.model_storage_path / self.fast_lora
        )

    def sampling(self, quality: Quality) -> Sampling:
        """Upstream's README run for `standard`; for `fast`, its README's LoRA run: text
        guide 1, audio guide 2, shift 2, and the few steps the LoRA was distilled for."""
        if quality is Quality.STANDARD:
            return Sampling(
                steps=self.sample_steps,
                text_guide_scale=self.text_guide_scale,
                audio_guide_scale=self.audio_guide_scale,
                shift=self.sample_shift,
            )
        if self.fast_lora_path is None:
            raise ValueError("quality=fast needs INFINITETALK_FAST_LORA")
        return Sampling(
            steps=self.fast_sample_steps,
            text_guide_scale=self.fast_text_guide_scale,
            audio_guide_scale=self.fast_audio_guide_scale,
            shift=self.fast_sample_shift,
            lora=((self.fast_lora_path, self.fast_lora_scale),),
        )

    def job_timeout(self, audio_seconds: float) -> float:
        """Seconds one job may take: generation time grows with the audio's length."""
        return self.timeout_base_seconds + self.timeout_per_audio_second * audio_seconds

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str],
        *,
        has_gpu: Callable[[], bool] = gpu_visible,
        **overrides: Any,
    ) -> Self:
        """The variables' settings; upstream gets `env` less its secrets."""
        overrides.setdefault(
            "child_env", {k: v for k, v in env.items() if not _SECRET_NAME.search(k)}
        )
        if "INFINITETALK_FAST_LORA" in env and not env["INFINITETALK_FAST_LORA"].strip():
            overrides.setdefault("fast_lora", None)
        settings = super().from_env(env, **overrides)
        if "mode" in settings.model_fields_set or not has_gpu():
            return settings
        return settings.model_copy(update={"mode": Mode.RESIDENT})
