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

DEFAULT_UPSTREAM_DIR = Path("/opt/InfiniteTalk")
DEFAULT_MODEL_STORAGE_PATH = Path("/runpod-volume/models")
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
    lora: tuple[Path, ...] = ()
    lora_scales: tuple[float, ...] = ()
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

    def lora_paths(self) -> tuple[Path, ...]:
        """LoRA files, relative ones under MODEL_STORAGE_PATH."""
        return tuple(p if p.is_absolute() else self.model_storage_path / p for p in self.lora)

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
        }
        lora = reader.get("INFINITETALK_LORA")
        if lora is not None:
            values["lora"] = tuple(Path(p.strip()) for p in lora.split(",") if p.strip())
        values["lora_scales"] = reader.scales(
            "INFINITETALK_LORA_SCALE", len(values.get("lora", ()))
        )
        if values["mode"] is None:
            values["mode"] = Mode.RESIDENT if has_gpu() else Mode.SUBPROCESS
        quant = values["quantization"]
        if values.get("lora") and quant in (Quantization.INT8, Quantization.FP8):
            reader.problems["INFINITETALK_QUANT"] = (
                "upstream ignores LoRA on a quantised model; unset INFINITETALK_LORA or the quant"
            )
        if reader.problems:
            raise EngineSettingsError(reader.problems)
        values["child_env"] = {k: v for k, v in env.items() if not _SECRET_NAME.search(k)}
        return cls.model_validate({k: v for k, v in values.items() if v is not None})


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

    def scales(self, name: str, count: int) -> tuple[float, ...] | None:
        """One LoRA scale per LoRA file; upstream's default is 1.2 for each."""
        value = self.get(name)
        if value is None:
            return (1.2,) * count
        try:
            scales = tuple(float(s) for s in value.split(","))
        except ValueError:
            scales = ()
        if len(scales) != count or not all(math.isfinite(s) for s in scales):
            self.problems[name] = f"must be {count} comma-separated numbers, one per LoRA file"
            return None
        return scales
