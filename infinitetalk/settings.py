"""InfiniteTalk engine configuration (DESIGN.md section 7), validated once at start-up.

Only the agent's CLI reads the environment; it hands the mapping to `from_env` and the
engine receives the resulting `InfiniteTalkSettings`. Paths are not checked here (that
is `preflight`'s job, with the upstream checkout and the weights in view).
"""

from __future__ import annotations

import glob
import math
import re
import sys
from collections.abc import Callable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from contracts import Quality

DEFAULT_UPSTREAM_DIR = Path("/opt/InfiniteTalk")
DEFAULT_MODEL_STORAGE_PATH = Path("/runpod-volume/models")
DEFAULT_FAST_LORA = Path("lora/Wan21_T2V_14B_lightx2v_cfg_step_distill_lora_rank32.safetensors")
"""lightx2v's step-distilled LoRA (Kijai/WanVideo_comfy), the 4-step one upstream's README names."""
E = TypeVar("E", bound=StrEnum)
N = TypeVar("N", int, float)
_SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|API_KEY|ACCESS_KEY|CREDENTIAL", re.IGNORECASE)


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


class EngineSettingsError(ValueError):
    """Names every malformed variable, so one restart fixes them all."""

    def __init__(self, problems: Mapping[str, str]) -> None:
        self.problems = dict(problems)
        detail = "; ".join(f"{name}: {why}" for name, why in self.problems.items())
        super().__init__(f"invalid InfiniteTalk settings: {detail}")


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


class InfiniteTalkSettings(BaseModel):
    """Everything the InfiniteTalk engine needs; defaults follow upstream's README run."""

    model_config = ConfigDict(frozen=True)

    mode: Mode = Mode.SUBPROCESS
    upstream_dir: Path = DEFAULT_UPSTREAM_DIR
    python: Path = Field(default_factory=lambda: Path(sys.executable))
    model_storage_path: Path = DEFAULT_MODEL_STORAGE_PATH
    sample_steps: int = Field(default=40, ge=1, le=1000)
    sample_shift: float | None = Field(default=None, gt=0)
    text_guide_scale: float = Field(default=5.0, ge=0)
    audio_guide_scale: float = Field(default=4.0, ge=0)
    memory_profile: MemoryProfile = MemoryProfile.AUTO
    quantization: Quantization = Quantization.AUTO
    fast_lora: Path | None = DEFAULT_FAST_LORA
    """The distilled LoRA of `quality=fast`, relative to MODEL_STORAGE_PATH; None: no fast."""
    fast_lora_scale: float = Field(default=1.0, gt=0)
    fast_sample_steps: int = Field(default=4, ge=1, le=1000)
    fast_text_guide_scale: float = Field(default=1.0, ge=0)
    fast_audio_guide_scale: float = Field(default=2.0, ge=0)
    fast_sample_shift: float = Field(default=2.0, gt=0)
    teacache: bool = False
    teacache_threshold: float = Field(default=0.2, gt=0)
    color_correction_strength: float = Field(default=1.0, ge=0, le=1)
    timeout_base_seconds: float = Field(default=600.0, gt=0)
    timeout_per_audio_second: float = Field(default=90.0, gt=0)
    load_timeout_seconds: float = Field(default=1800.0, gt=0)
    cancel_grace_seconds: float = Field(default=10.0, gt=0)
    child_env: dict[str, str] = Field(default_factory=dict)
    """The environment upstream runs in: the agent's, less anything that looks secret."""

    @property
    def wan_dir(self) -> Path:
        return self.model_storage_path / "Wan2.1-I2V-14B-480P"

    @property
    def infinitetalk_weights(self) -> Path:
        return self.model_storage_path / "InfiniteTalk" / "single" / "infinitetalk.safetensors"

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
        cls, env: Mapping[str, str], *, has_gpu: Callable[[], bool] = gpu_visible
    ) -> InfiniteTalkSettings:
        """Build settings from environment-style strings; blank counts as unset."""
        reader = _Reader(env)
        values: dict[str, Any] = {
            "mode": reader.choice("INFINITETALK_MODE", Mode),
            "upstream_dir": reader.path("INFINITETALK_DIR"),
            "python": reader.path("INFINITETALK_PYTHON"),
            "model_storage_path": reader.path("MODEL_STORAGE_PATH"),
            "sample_steps": reader.number("INFINITETALK_SAMPLE_STEPS", int, 1, 1000),
            "sample_shift": reader.number("INFINITETALK_SAMPLE_SHIFT", float, 0.01, 100),
            "text_guide_scale": reader.number("INFINITETALK_TEXT_GUIDE_SCALE", float, 0, 50),
            "audio_guide_scale": reader.number("INFINITETALK_AUDIO_GUIDE_SCALE", float, 0, 50),
            "memory_profile": reader.choice("INFINITETALK_MEMORY_PROFILE", MemoryProfile),
            "quantization": reader.choice("INFINITETALK_QUANT", Quantization),
            "teacache": reader.flag("INFINITETALK_TEACACHE"),
            "teacache_threshold": reader.number("INFINITETALK_TEACACHE_THRESH", float, 0.01, 10),
            "color_correction_strength": reader.number(
                "INFINITETALK_COLOR_CORRECTION", float, 0, 1
            ),
            "timeout_base_seconds": reader.number(
                "INFINITETALK_TIMEOUT_BASE_SECONDS", float, 1, 86400
            ),
            "timeout_per_audio_second": reader.number(
                "INFINITETALK_TIMEOUT_PER_AUDIO_SECOND", float, 0.1, 3600
            ),
            "load_timeout_seconds": reader.number(
                "INFINITETALK_LOAD_TIMEOUT_SECONDS", float, 1, 86400
            ),
            "cancel_grace_seconds": reader.number(
                "INFINITETALK_CANCEL_GRACE_SECONDS", float, 0.1, 600
            ),
            "fast_lora_scale": reader.number("INFINITETALK_FAST_LORA_SCALE", float, 0.01, 10),
            "fast_sample_steps": reader.number("INFINITETALK_FAST_SAMPLE_STEPS", int, 1, 1000),
            "fast_text_guide_scale": reader.number(
                "INFINITETALK_FAST_TEXT_GUIDE_SCALE", float, 0, 50
            ),
            "fast_audio_guide_scale": reader.number(
                "INFINITETALK_FAST_AUDIO_GUIDE_SCALE", float, 0, 50
            ),
            "fast_sample_shift": reader.number("INFINITETALK_FAST_SAMPLE_SHIFT", float, 0.01, 100),
        }
        if values["mode"] is None:
            values["mode"] = Mode.RESIDENT if has_gpu() else Mode.SUBPROCESS
        if reader.problems:
            raise EngineSettingsError(reader.problems)
        values["child_env"] = {k: v for k, v in env.items() if not _SECRET_NAME.search(k)}
        settings = {k: v for k, v in values.items() if v is not None}
        if "INFINITETALK_FAST_LORA" in env:  # set but blank turns fast off
            settings["fast_lora"] = reader.path("INFINITETALK_FAST_LORA")
        return cls.model_validate(settings)


class _Reader:
    """Parses one variable at a time and collects every problem instead of stopping."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: dict[str, str] = {}

    def get(self, name: str) -> str | None:
        raw = self.env.get(name)
        if raw is None or not raw.strip():
            return None
        return raw.strip()

    def path(self, name: str) -> Path | None:
        value = self.get(name)
        return Path(value).expanduser() if value is not None else None

    def choice(self, name: str, enum: type[E]) -> E | None:
        value = self.get(name)
        if value is None:
            return None
        try:
            return enum(value.lower())
        except ValueError:
            self.problems[name] = f"must be one of {', '.join(e.value for e in enum)}"
            return None

    def number(self, name: str, kind: type[N], low: float, high: float) -> N | None:
        value = self.get(name)
        if value is None:
            return None
        try:
            number = kind(value)
        except ValueError:
            number = None
        if number is None or not math.isfinite(number) or not low <= number <= high:
            noun = "an integer" if kind is int else "a number"
            self.problems[name] = f"must be {noun} from {low:g} to {high:g}"
            return None
        return number

    def flag(self, name: str) -> bool | None:
        value = self.get(name)
        if value is None:
            return None
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        self.problems[name] = "must be true or false (1/0, yes/no, on/off)"
        return None
