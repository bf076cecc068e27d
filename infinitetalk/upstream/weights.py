"""The weight files a run needs under MODEL_STORAGE_PATH, and whether they are there.

The layout is upstream's README layout; `scripts/download_weights.sh`
fetches exactly these files. Which ones are needed depends on the quantisation: the
quantised path loads its own DiT and T5 instead of the bf16 shards and checkpoint. The fast
LoRA is not required: without it the agent serves standard jobs only.
"""

from dataclasses import dataclass
from pathlib import Path

from infinitetalk.settings import InfiniteTalkSettings, Quantization

DIT_SHARDS = 7


@dataclass(frozen=True)
class WeightFile:
    path: Path
    what: str
    directory: bool = False
    """A tokenizer folder: present when it holds at least one file."""


@dataclass(frozen=True)
class WeightStatus:
    file: WeightFile
    size_bytes: int | None
    """None when missing."""

    @property
    def present(self) -> bool:
        return self.size_bytes is not None


def required_weights(
    settings: InfiniteTalkSettings, quantization: Quantization
) -> list[WeightFile]:
    """Every file or folder upstream opens for this configuration."""
    wan = settings.wan_dir
    files = [
        WeightFile(wan / "config.json", "Wan2.1 DiT config"),
        WeightFile(wan / "Wan2.1_VAE.pth", "Wan2.1 VAE"),
        WeightFile(wan / "models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth", "CLIP"),
        WeightFile(wan / "google" / "umt5-xxl", "T5 tokenizer", directory=True),
        WeightFile(wan / "xlm-roberta-large", "CLIP tokenizer", directory=True),
        WeightFile(settings.wav2vec_dir / "config.json", "wav2vec2 config"),
        WeightFile(settings.wav2vec_dir / "preprocessor_config.json", "wav2vec2 preprocessor"),
        WeightFile(settings.wav2vec_dir / "model.safetensors", "wav2vec2 weights"),
    ]
    if quantization in (Quantization.INT8, Quantization.FP8):
        files += quant_files(settings, quantization)
    else:
        files += [
            WeightFile(
                wan / f"diffusion_pytorch_model-{i:05d}-of-{DIT_SHARDS:05d}.safetensors",
                f"Wan2.1 DiT shard {i}/{DIT_SHARDS}",
            )
            for i in range(1, DIT_SHARDS + 1)
        ]
        files += [
            WeightFile(wan / "models_t5_umt5-xxl-enc-bf16.pth", "T5 encoder (bf16)"),
            WeightFile(settings.infinitetalk_weights, "InfiniteTalk audio weights"),
        ]
    return files


def fast_lora_file(settings: InfiniteTalkSettings) -> WeightFile | None:
    """The distilled LoRA of `quality=fast`: optional, an agent without it serves standard."""
    path = settings.fast_lora_path
    return WeightFile(path, "fast LoRA (quality=fast)") if path is not None else None


def multi_weights_file(settings: InfiniteTalkSettings) -> WeightFile:
    """The two-speaker audio weights: optional, an agent without them makes one speaker."""
    return WeightFile(settings.multi_weights, "InfiniteTalk multi weights (two speakers)")


def quant_files(settings: InfiniteTalkSettings, quantization: Quantization) -> list[WeightFile]:
    """The quantised DiT and T5 with their maps, as upstream's `--quant_dir` expects them."""
    dit = settings.quant_weights(quantization)
    q = quantization.value
    return [
        WeightFile(dit, f"InfiniteTalk DiT ({q})"),
        WeightFile(dit.with_suffix(".json"), f"InfiniteTalk DiT quantisation map ({q})"),
        WeightFile(dit.parent / f"t5_{q}.safetensors", f"T5 encoder ({q})"),
        WeightFile(dit.parent / f"t5_map_{q}.json", f"T5 quantisation map ({q})"),
    ]


def check_weights(files: list[WeightFile]) -> list[WeightStatus]:
    return [WeightStatus(file, _size(file)) for file in files]


def quant_available(settings: InfiniteTalkSettings, quantization: Quantization) -> bool:
    """Whether every file of this quantisation is on the volume."""
    return all(status.present for status in check_weights(quant_files(settings, quantization)))


def _size(file: WeightFile) -> int | None:
    try:
        if file.directory:
            sizes = [p.stat().st_size for p in file.path.rglob("*") if p.is_file()]
            return sum(sizes) if sizes else None
        return file.path.stat().st_size if file.path.is_file() else None
    except OSError:
        return None
